//! Position sizing (SPEC §6): how much to trade for a signal, at what leverage, with which
//! stop and target — or the reason not to trade.

use crate::policy::{Side, Signal};
use crate::rules::SymbolRules;

/// How much of equity a trade puts at risk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SizingMode {
    /// `risk_pct` of equity between entry and stop.
    FixedRisk,
    /// Half Kelly on the model's probability, clamped to `[0, max_risk_pct]`; fixed risk
    /// when the signal carries no probability (the teacher's rules).
    Kelly,
}

/// How stops and targets are placed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// Fractions of the entry price.
    Percent,
    /// Multiples of ATR(14).
    Atr,
}

/// The `[risk]` settings sizing reads.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SizingConfig {
    /// Fixed risk or Kelly.
    pub mode: SizingMode,
    /// Fraction of equity at risk per trade (fixed risk).
    pub risk_pct: f64,
    /// Ceiling on the Kelly fraction.
    pub max_risk_pct: f64,
    /// Percent of entry or ATR multiples.
    pub stop_mode: StopMode,
    /// Target distance (fraction of entry, or ATR multiple).
    pub take_profit: f64,
    /// Stop distance (fraction of entry, or ATR multiple).
    pub stop_loss: f64,
    /// Total notional across positions, as a multiple of equity.
    pub max_gross_exposure: f64,
}

impl Default for SizingConfig {
    fn default() -> Self {
        Self {
            mode: SizingMode::FixedRisk,
            risk_pct: 0.01,
            max_risk_pct: 0.02,
            stop_mode: StopMode::Percent,
            take_profit: 0.05,
            stop_loss: 0.02,
            max_gross_exposure: 3.0,
        }
    }
}

/// The account as sizing sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AccountView {
    /// Wallet balance plus unrealised PnL.
    pub equity: f64,
    /// Margin not locked in positions or pending entries.
    pub available_margin: f64,
    /// Notional of open positions and pending entries.
    pub gross_notional: f64,
}

/// A sized order, ready for the broker.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Order {
    /// Direction.
    pub side: Side,
    /// Quantity, a whole number of steps.
    pub qty: f64,
    /// Whole leverage.
    pub leverage: f64,
    /// The price sizing assumed (the fill will differ by slippage).
    pub price: f64,
    /// Stop price (on a tick).
    pub stop: f64,
    /// Target price (on a tick).
    pub target: f64,
    /// Fraction of equity at risk.
    pub risk_fraction: f64,
}

impl Order {
    /// Notional at the assumed price.
    pub fn notional(&self) -> f64 {
        self.qty * self.price
    }

    /// Isolated margin the order locks.
    pub fn margin(&self) -> f64 {
        self.notional() / self.leverage
    }
}

/// Why a signal did not become an order.
#[derive(Clone, Copy, Debug, PartialEq, thiserror::Error)]
pub enum Skip {
    /// Kelly found no edge (fraction ≤ 0).
    #[error("no edge: Kelly fraction {fraction:.4} ≤ 0")]
    NoEdge {
        /// The half-Kelly fraction before clamping.
        fraction: f64,
    },
    /// ATR stops were asked for but ATR is not positive yet.
    #[error("ATR is {atr}: no ATR-based stop")]
    NoAtr {
        /// The ATR.
        atr: f64,
    },
    /// Price, equity or the stop distance is not a usable number.
    #[error("unusable inputs: price {price}, equity {equity}")]
    BadInput {
        /// Price.
        price: f64,
        /// Equity.
        equity: f64,
    },
    /// Rounded down to the step, nothing is left (or less than the minimum quantity).
    #[error("quantity {qty} below the minimum {min_qty}")]
    BelowMinQty {
        /// Quantity after rounding.
        qty: f64,
        /// The symbol's minimum.
        min_qty: f64,
    },
    /// The order's notional is under the exchange's minimum.
    #[error("notional {notional:.2} below the minimum {min_notional}")]
    BelowMinNotional {
        /// The order's notional.
        notional: f64,
        /// The symbol's minimum.
        min_notional: f64,
    },
    /// No margin or exposure headroom left.
    #[error("no room: available margin {available:.2}, gross exposure at its cap")]
    NoRoom {
        /// Available margin.
        available: f64,
    },
    /// On the symbol's tick the stop or target lands on or beyond the entry.
    #[error("tick {tick} too coarse: stop or target rounds onto the entry")]
    TickTooCoarse {
        /// The symbol's tick.
        tick: f64,
    },
    /// Even at 1× the stop would lie beyond the liquidation price.
    #[error("the stop lies beyond liquidation at every leverage")]
    StopBeyondLiquidation,
}

/// Sizes `signal` at `price` (ATR(14) = `atr`) for `account` under `rules`.
pub fn size(
    signal: &Signal,
    price: f64,
    atr: f64,
    rules: &SymbolRules,
    account: &AccountView,
    config: &SizingConfig,
) -> Result<Order, Skip> {
    if !(price.is_finite() && price > 0.0 && account.equity.is_finite() && account.equity > 0.0) {
        return Err(Skip::BadInput { price, equity: account.equity });
    }
    let (stop_distance, target_distance) = match config.stop_mode {
        StopMode::Percent => (price * config.stop_loss, price * config.take_profit),
        StopMode::Atr if atr.is_finite() && atr > 0.0 => (atr * config.stop_loss, atr * config.take_profit),
        StopMode::Atr => return Err(Skip::NoAtr { atr }),
    };
    let side = signal.side;
    // Both toward the entry: the stop never lies past the planned loss.
    let stop = rules.round_price_toward(price - side.sign() * stop_distance, price);
    let target = rules.round_price_toward(price + side.sign() * target_distance, price);
    if side.sign() * (price - stop) <= 0.0 || side.sign() * (target - price) <= 0.0 {
        return Err(Skip::TickTooCoarse { tick: rules.tick_size });
    }
    let stop_distance = (price - stop).abs();
    if stop <= 0.0 {
        return Err(Skip::BadInput { price, equity: account.equity });
    }
    let risk_fraction = risk_fraction(signal, (target - price).abs() / stop_distance, config)?;
    let mut qty = account.equity * risk_fraction / stop_distance;
    // Exposure cap, then margin: shrink the order to what fits.
    let exposure_room = config.max_gross_exposure * account.equity - account.gross_notional;
    qty = qty.min(exposure_room.max(0.0) / price);
    if qty <= 0.0 {
        return Err(Skip::NoRoom { available: account.available_margin });
    }
    let leverage = safe_leverage(side, price, qty, stop, signal.max_leverage, rules)?;
    qty = qty.min(account.available_margin.max(0.0) * leverage / price);
    if qty <= 0.0 {
        return Err(Skip::NoRoom { available: account.available_margin });
    }
    let qty = rules.round_qty_down(qty);
    if qty <= 0.0 || qty < rules.min_qty {
        return Err(Skip::BelowMinQty { qty, min_qty: rules.min_qty });
    }
    if qty * price < rules.min_notional {
        return Err(Skip::BelowMinNotional { notional: qty * price, min_notional: rules.min_notional });
    }
    // A smaller quantity may sit in a lower bracket: the leverage found still holds, since
    // lower brackets allow more and keep less maintenance margin.
    Ok(Order { side, qty, leverage, price, stop, target, risk_fraction })
}

/// The fraction of equity at risk: fixed, or half Kelly with payoff ratio `b`.
fn risk_fraction(signal: &Signal, b: f64, config: &SizingConfig) -> Result<f64, Skip> {
    match (config.mode, signal.probability) {
        (SizingMode::Kelly, Some(p)) => {
            let fraction = 0.5 * (p - (1.0 - p) / b);
            if fraction.is_nan() || fraction <= 0.0 {
                return Err(Skip::NoEdge { fraction });
            }
            Ok(fraction.min(config.max_risk_pct))
        }
        _ => Ok(config.risk_pct),
    }
}

/// The highest whole leverage ≤ `cap` and the bracket's limit whose liquidation price
/// lies strictly beyond the stop.
fn safe_leverage(
    side: Side,
    price: f64,
    qty: f64,
    stop: f64,
    cap: f64,
    rules: &SymbolRules,
) -> Result<f64, Skip> {
    let notional = qty * price;
    let ceiling = cap.min(rules.bracket(notional).max_leverage).floor().max(1.0);
    let mut leverage = ceiling;
    while leverage >= 1.0 {
        let liquidation =
            rules.liquidation_price(side, price, qty.max(f64::MIN_POSITIVE), notional / leverage);
        let inside = match side {
            Side::Long => liquidation < stop,
            Side::Short => liquidation > stop,
        };
        if inside {
            return Ok(leverage);
        }
        leverage -= 1.0;
    }
    Err(Skip::StopBeyondLiquidation)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Rule;

    fn signal(side: Side, probability: Option<f64>, max_leverage: f64) -> Signal {
        Signal { side, rule: Rule::Momentum, probability, strength: 0.8, max_leverage }
    }

    fn account(equity: f64) -> AccountView {
        AccountView { equity, available_margin: equity, gross_notional: 0.0 }
    }

    #[test]
    fn fixed_risk_puts_one_percent_between_entry_and_stop() {
        let rules = SymbolRules::usdm_default();
        let order = size(
            &signal(Side::Long, None, 3.0),
            50_000.0,
            0.0,
            &rules,
            &account(10_000.0),
            &SizingConfig::default(),
        )
        .unwrap();
        // Stop 2 % below: 1,000 per BTC; 100 at risk → 0.1 BTC.
        assert_eq!((order.stop, order.target), (49_000.0, 52_500.0));
        assert!((order.qty - 0.1).abs() < 1e-12);
        assert_eq!(order.leverage, 3.0);
        assert!((order.margin() - 5_000.0 / 3.0).abs() < 1e-9);
        let short = size(
            &signal(Side::Short, None, 3.0),
            50_000.0,
            0.0,
            &rules,
            &account(10_000.0),
            &SizingConfig::default(),
        )
        .unwrap();
        assert_eq!((short.stop, short.target), (51_000.0, 47_500.0));
    }

    #[test]
    fn kelly_uses_the_model_probability_and_skips_without_edge() {
        let rules = SymbolRules::usdm_default();
        let kelly = SizingConfig { mode: SizingMode::Kelly, max_risk_pct: 0.5, ..SizingConfig::default() };
        // b = 5 % / 2 % = 2.5; p = 0.6 → half of 0.6 − 0.4/2.5 = 0.22.
        let order = size(&signal(Side::Long, Some(0.6), 3.0), 100.0, 0.0, &rules, &account(10_000.0), &kelly)
            .unwrap();
        assert!((order.risk_fraction - 0.22).abs() < 1e-12);
        let capped = SizingConfig { max_risk_pct: 0.02, ..kelly };
        let order =
            size(&signal(Side::Long, Some(0.6), 3.0), 100.0, 0.0, &rules, &account(10_000.0), &capped)
                .unwrap();
        assert_eq!(order.risk_fraction, 0.02);
        let none = size(&signal(Side::Long, Some(0.2), 3.0), 100.0, 0.0, &rules, &account(10_000.0), &kelly);
        assert!(matches!(none, Err(Skip::NoEdge { .. })));
        // The teacher's signals carry no probability: fixed risk.
        let teacher =
            size(&signal(Side::Long, None, 3.0), 100.0, 0.0, &rules, &account(10_000.0), &kelly).unwrap();
        assert_eq!(teacher.risk_fraction, 0.01);
    }

    #[test]
    fn leverage_keeps_the_stop_inside_liquidation() {
        let rules = SymbolRules::usdm_default();
        let wide = SizingConfig { stop_loss: 0.2, take_profit: 0.3, ..SizingConfig::default() };
        // A 20 % stop: 5× would liquidate near −19.6 %, so at most 4×.
        let order =
            size(&signal(Side::Long, None, 20.0), 100.0, 0.0, &rules, &account(10_000.0), &wide).unwrap();
        assert_eq!(order.leverage, 4.0);
        let liquidation = rules.liquidation_price(Side::Long, 100.0, order.qty, order.margin());
        assert!(liquidation < order.stop, "{liquidation} vs stop {}", order.stop);
        let short =
            size(&signal(Side::Short, None, 20.0), 100.0, 0.0, &rules, &account(10_000.0), &wide).unwrap();
        assert!(rules.liquidation_price(Side::Short, 100.0, short.qty, short.margin()) > short.stop);
    }

    #[test]
    fn filters_and_room_give_reasons() {
        let rules = SymbolRules::usdm_default();
        let config = SizingConfig::default();
        let tiny = size(&signal(Side::Long, None, 3.0), 50_000.0, 0.0, &rules, &account(10.0), &config);
        assert!(matches!(tiny, Err(Skip::BelowMinQty { .. })), "{tiny:?}");
        let cheap = size(&signal(Side::Long, None, 3.0), 10.0, 0.0, &rules, &account(150.0), &config);
        assert!(matches!(cheap, Err(Skip::BelowMinNotional { .. })), "{cheap:?}");
        let full = AccountView { equity: 10_000.0, available_margin: 10_000.0, gross_notional: 30_000.0 };
        assert!(matches!(
            size(&signal(Side::Long, None, 3.0), 100.0, 0.0, &rules, &full, &config),
            Err(Skip::NoRoom { .. })
        ));
        let no_margin = AccountView { available_margin: 0.0, ..account(10_000.0) };
        assert!(matches!(
            size(&signal(Side::Long, None, 3.0), 100.0, 0.0, &rules, &no_margin, &config),
            Err(Skip::NoRoom { .. })
        ));
        let atr = SizingConfig { stop_mode: StopMode::Atr, stop_loss: 1.5, take_profit: 3.0, ..config };
        assert!(matches!(
            size(&signal(Side::Long, None, 3.0), 100.0, 0.0, &rules, &account(10_000.0), &atr),
            Err(Skip::NoAtr { .. })
        ));
        let order =
            size(&signal(Side::Long, None, 3.0), 100.0, 2.0, &rules, &account(10_000.0), &atr).unwrap();
        assert_eq!((order.stop, order.target), (97.0, 106.0));
        assert!(matches!(
            size(&signal(Side::Long, None, 3.0), f64::NAN, 0.0, &rules, &account(1.0), &config),
            Err(Skip::BadInput { .. })
        ));
        // A 0.1 tick on a price of 1.59: a 2 % stop would round onto the entry.
        let coarse = size(&signal(Side::Long, None, 3.0), 1.59, 0.0, &rules, &account(10_000.0), &config);
        assert!(matches!(coarse, Err(Skip::TickTooCoarse { .. })), "{coarse:?}");
    }

    #[test]
    fn min_qty_and_min_notional_boundaries() {
        let brackets = || SymbolRules::usdm_default().brackets().to_vec();
        let rules = SymbolRules::new(0.1, 1.0, 0.01, 100.0, brackets()).unwrap();
        let config = SizingConfig::default();
        let s = signal(Side::Long, None, 3.0);
        // Price 100, 2 % stop (2.00 a unit): 1 % of equity at risk.
        let at = |equity: f64| size(&s, 100.0, 0.0, &rules, &account(equity), &config);
        // 200 equity → 1.0 unit = min qty, notional 100 = min notional: accepted.
        let edge = at(200.0).unwrap();
        assert!((edge.qty - 1.0).abs() < 1e-12 && (edge.notional() - 100.0).abs() < 1e-9);
        // 199.8 → 0.999 → 0.9 after the step: below min qty.
        assert!(matches!(at(199.8), Err(Skip::BelowMinQty { .. })));
        // With min qty out of the way, notional 99.99 < 100 is refused.
        let loose = SymbolRules::new(0.0001, 0.0001, 0.01, 100.0, brackets()).unwrap();
        let below = size(&s, 100.0, 0.0, &loose, &account(199.98), &config);
        assert!(matches!(below, Err(Skip::BelowMinNotional { .. })), "{below:?}");
        // Step rounding is downward: 1.29 units become 1.2.
        let rounded = at(258.0).unwrap();
        assert!((rounded.qty - 1.2).abs() < 1e-12, "{rounded:?}");
    }
}
