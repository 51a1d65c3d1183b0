//! A symbol's exchange rules (Binance USDⓈ-M `exchangeInfo` filters and leverage
//! brackets) and the isolated-margin liquidation price they imply.

use crate::policy::Side;

/// One leverage bracket: positions up to `notional_cap` may use `max_leverage`, and keep
/// `maint_margin_rate` of notional (less `maint_amount`) as maintenance margin.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bracket {
    /// Largest position notional (quote currency) in this bracket.
    pub notional_cap: f64,
    /// Highest leverage allowed in it.
    pub max_leverage: f64,
    /// Maintenance margin rate.
    pub maint_margin_rate: f64,
    /// Maintenance amount (Binance's `cum`).
    pub maint_amount: f64,
}

/// Why rules could not be built.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum RulesError {
    /// A size or price filter was not a positive finite number.
    #[error("{field} must be a positive finite number, got {value}")]
    NotPositive {
        /// The filter.
        field: &'static str,
        /// Its value.
        value: f64,
    },
    /// Brackets missing, not ascending by notional, or with impossible rates.
    #[error("leverage brackets must be non-empty, ascending by notional cap, with leverage ≥ 1 and rates in [0, 1)")]
    BadBrackets,
}

/// A symbol's order filters from exchangeInfo (what a refresh may change in place).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Filters {
    /// Quantity step (`LOT_SIZE.stepSize`).
    pub step_size: f64,
    /// Smallest quantity (`LOT_SIZE.minQty`).
    pub min_qty: f64,
    /// Price tick (`PRICE_FILTER.tickSize`).
    pub tick_size: f64,
    /// Smallest order notional (`MIN_NOTIONAL.notional`).
    pub min_notional: f64,
}

/// Steps and ticks positive, minimums not negative, all finite.
fn check_filters(f: &Filters) -> Result<(), RulesError> {
    for (field, value) in [("step_size", f.step_size), ("tick_size", f.tick_size)] {
        if !(value.is_finite() && value > 0.0) {
            return Err(RulesError::NotPositive { field, value });
        }
    }
    for (field, value) in [("min_qty", f.min_qty), ("min_notional", f.min_notional)] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(RulesError::NotPositive { field, value });
        }
    }
    Ok(())
}

/// The most leverage brackets a symbol has (Binance lists up to about a dozen).
pub const MAX_BRACKETS: usize = 16;

/// Brackets non-empty, ascending by notional cap, with leverage ≥ 1 and rates in [0, 1).
fn check_brackets(brackets: &[Bracket]) -> Result<(), RulesError> {
    let ascending = brackets.windows(2).all(|w| w[0].notional_cap < w[1].notional_cap);
    let sane = brackets
        .iter()
        .all(|b| b.max_leverage >= 1.0 && (0.0..1.0).contains(&b.maint_margin_rate) && b.maint_amount >= 0.0);
    if brackets.is_empty() || !ascending || !sane {
        return Err(RulesError::BadBrackets);
    }
    Ok(())
}

/// What the exchange allows for one symbol.
#[derive(Clone, Debug, PartialEq)]
pub struct SymbolRules {
    /// Quantity step (`LOT_SIZE.stepSize`, or `MARKET_LOT_SIZE` for market orders).
    pub step_size: f64,
    /// Smallest quantity (`LOT_SIZE.minQty`).
    pub min_qty: f64,
    /// Price tick (`PRICE_FILTER.tickSize`).
    pub tick_size: f64,
    /// Smallest order notional (`MIN_NOTIONAL.notional`).
    pub min_notional: f64,
    /// Leverage brackets, ascending by notional cap.
    brackets: Vec<Bracket>,
}

impl SymbolRules {
    /// Checked rules.
    pub fn new(
        step_size: f64,
        min_qty: f64,
        tick_size: f64,
        min_notional: f64,
        brackets: Vec<Bracket>,
    ) -> Result<Self, RulesError> {
        check_filters(&Filters { step_size, min_qty, tick_size, min_notional })?;
        check_brackets(&brackets)?;
        // Room for a refresh's brackets without allocating on the brain's thread then.
        let mut brackets = brackets;
        brackets.reserve(MAX_BRACKETS.saturating_sub(brackets.len()));
        Ok(Self { step_size, min_qty, tick_size, min_notional, brackets })
    }

    /// Binance's published BTCUSDT brackets (first four) and filters: the paper default
    /// when the exchange gives no brackets (they need a signed request).
    pub fn usdm_default() -> Self {
        let b = |notional_cap, max_leverage, maint_margin_rate, maint_amount| Bracket {
            notional_cap,
            max_leverage,
            maint_margin_rate,
            maint_amount,
        };
        Self::new(
            0.001,
            0.001,
            0.1,
            100.0,
            vec![
                b(50_000.0, 125.0, 0.004, 0.0),
                b(600_000.0, 100.0, 0.005, 50.0),
                b(3_000_000.0, 75.0, 0.0065, 950.0),
                b(12_000_000.0, 50.0, 0.01, 11_450.0),
            ],
        )
        .unwrap_or_else(|_| unreachable!("constant rules are valid"))
    }

    /// The brackets to trade under when the exchange serves none (Binance serves them only
    /// from the signed `GET /fapi/v1/leverageBracket`): genuinely conservative rather than
    /// BTCUSDT's, which are the least conservative there are (125×, 0.4 %). At most 10×
    /// with a 5 % maintenance rate up to 5,000 notional, falling to 1× at 25 % past 100,000;
    /// the maintenance amounts keep the margin continuous across the caps, as Binance's do.
    pub fn conservative_brackets() -> Vec<Bracket> {
        let tiers = [(5_000.0, 10.0, 0.05), (25_000.0, 5.0, 0.10), (100_000.0, 3.0, 0.15), (1e12, 1.0, 0.25)];
        let mut brackets: Vec<Bracket> = Vec::with_capacity(tiers.len());
        for (notional_cap, max_leverage, maint_margin_rate) in tiers {
            let maint_amount = brackets
                .last()
                .map_or(0.0, |b| b.maint_amount + b.notional_cap * (maint_margin_rate - b.maint_margin_rate));
            brackets.push(Bracket { notional_cap, max_leverage, maint_margin_rate, maint_amount });
        }
        brackets
    }

    /// The order filters.
    pub fn filters(&self) -> Filters {
        Filters {
            step_size: self.step_size,
            min_qty: self.min_qty,
            tick_size: self.tick_size,
            min_notional: self.min_notional,
        }
    }

    /// Takes new order filters (checked as [`Self::new`] checks them; refused ones leave
    /// the rules as they were). Allocates nothing.
    pub fn set_filters(&mut self, f: Filters) -> Result<(), RulesError> {
        check_filters(&f)?;
        (self.step_size, self.min_qty, self.tick_size, self.min_notional) =
            (f.step_size, f.min_qty, f.tick_size, f.min_notional);
        Ok(())
    }

    /// Takes new leverage brackets (checked as [`Self::new`] checks them; refused ones leave
    /// the rules as they were), reusing the list's memory when it is large enough.
    pub fn set_brackets(&mut self, brackets: &[Bracket]) -> Result<(), RulesError> {
        check_brackets(brackets)?;
        self.brackets.clear();
        self.brackets.extend_from_slice(brackets);
        Ok(())
    }

    /// The same rules under `brackets` (checked as [`Self::new`] checks them).
    pub fn with_brackets(&self, brackets: Vec<Bracket>) -> Result<Self, RulesError> {
        Self::new(self.step_size, self.min_qty, self.tick_size, self.min_notional, brackets)
    }

    /// The leverage brackets, ascending by notional cap.
    pub fn brackets(&self) -> &[Bracket] {
        &self.brackets
    }

    /// `qty` rounded down to the step (a hair of tolerance so 0.3/0.1 stays 3 steps).
    pub fn round_qty_down(&self, qty: f64) -> f64 {
        if !(qty.is_finite() && qty > 0.0) {
            return 0.0;
        }
        (qty / self.step_size + 1e-9).floor() * self.step_size
    }

    /// `price` on the tick, moved toward `anchor` when between ticks (a stop or target
    /// rounded toward the entry never lies past the planned loss or gain).
    pub fn round_price_toward(&self, price: f64, anchor: f64) -> f64 {
        let ticks = price / self.tick_size;
        let nearest = ticks.round();
        let ticks = if (ticks - nearest).abs() <= 1e-6 {
            nearest
        } else if price < anchor {
            ticks.ceil()
        } else {
            ticks.floor()
        };
        ticks * self.tick_size
    }

    /// The bracket a position of this notional falls in (the last one beyond all caps).
    pub fn bracket(&self, notional: f64) -> Bracket {
        let last = self.brackets[self.brackets.len() - 1];
        self.brackets.iter().copied().find(|b| notional <= b.notional_cap).unwrap_or(last)
    }

    /// Isolated-margin liquidation price of one position (Binance's formula with no other
    /// positions in the isolated wallet): `(margin + cum − side·qty·entry) / (qty·mmr −
    /// side·qty)`; 0 when a long can never be liquidated.
    pub fn liquidation_price(&self, side: Side, entry: f64, qty: f64, margin: f64) -> f64 {
        let bracket = self.bracket(qty * entry);
        let s = side.sign();
        let price =
            (margin + bracket.maint_amount - s * qty * entry) / (qty * bracket.maint_margin_rate - s * qty);
        price.max(0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_follows_step_and_tick() {
        let r = SymbolRules::usdm_default();
        assert!((r.round_qty_down(0.0129) - 0.012).abs() < 1e-12);
        assert!((r.round_qty_down(0.003) - 0.003).abs() < 1e-12, "exact steps survive float noise");
        assert_eq!(r.round_qty_down(-1.0), 0.0);
        assert_eq!(r.round_qty_down(f64::NAN), 0.0);
        assert!((r.round_price_toward(61_234.56, 62_000.0) - 61_234.6).abs() < 1e-6, "up, toward");
        assert!((r.round_price_toward(61_234.56, 61_000.0) - 61_234.5).abs() < 1e-6, "down, toward");
        assert!((r.round_price_toward(61_234.5, 61_000.0) - 61_234.5).abs() < 1e-6, "on the tick: kept");
    }

    #[test]
    fn brackets_are_chosen_by_notional() {
        let r = SymbolRules::usdm_default();
        assert_eq!(r.bracket(10_000.0).max_leverage, 125.0);
        assert_eq!(r.bracket(50_000.0).max_leverage, 125.0);
        assert_eq!(r.bracket(50_000.01).max_leverage, 100.0);
        assert_eq!(r.bracket(1e12).max_leverage, 50.0);
    }

    #[test]
    fn liquidation_matches_binance_worked_numbers() {
        let r = SymbolRules::usdm_default();
        // 1 BTC at 50,000 with 10× (5,000 margin): a notional of exactly 50,000 is in the
        // first bracket (mmr 0.4 %, cum 0).
        let long = r.liquidation_price(Side::Long, 50_000.0, 1.0, 5_000.0);
        assert!((long - 45_000.0 / 0.996).abs() < 1e-6, "{long}");
        let short = r.liquidation_price(Side::Short, 50_000.0, 1.0, 5_000.0);
        assert!((short - 55_000.0 / 1.004).abs() < 1e-6, "{short}");
        // 1× long with the full notional as margin can only be liquidated near zero.
        assert_eq!(r.liquidation_price(Side::Long, 100.0, 1.0, 100.0), 0.0);
    }

    #[test]
    fn bad_rules_are_refused() {
        let b = Bracket { notional_cap: 1.0, max_leverage: 10.0, maint_margin_rate: 0.01, maint_amount: 0.0 };
        assert!(matches!(
            SymbolRules::new(0.0, 0.0, 0.1, 5.0, vec![b]),
            Err(RulesError::NotPositive { field: "step_size", .. })
        ));
        assert_eq!(SymbolRules::new(0.1, 0.0, 0.1, 5.0, vec![]), Err(RulesError::BadBrackets));
        assert_eq!(SymbolRules::new(0.1, 0.0, 0.1, 5.0, vec![b, b]), Err(RulesError::BadBrackets));
    }
}
