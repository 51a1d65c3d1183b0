//! Signal decay (SPEC §5): on every closed bar, each open position's reason to exist is
//! checked again; the first failing check closes it at market with that reason.

use crate::policy::Side;
use aegis_analytics::feature::{LIQUIDITY_GRAB, MARKET_STRUCTURE};
use aegis_analytics::FeatureSnapshot;

/// Why a position's signal decayed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decay {
    /// `market_structure` turned against the position.
    StructureTurned,
    /// The fair-value gap active at entry has been filled.
    EntryGapFilled,
    /// Price moved against the position by the configured fraction, with no liquidity grab.
    AdverseMove,
}

impl Decay {
    /// A stable name for journals and reports.
    pub fn name(self) -> &'static str {
        match self {
            Decay::StructureTurned => "structure_turned",
            Decay::EntryGapFilled => "entry_fvg_filled",
            Decay::AdverseMove => "adverse_move",
        }
    }
}

/// What the decay checks need to know about an open position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Held {
    /// Its side.
    pub side: Side,
    /// Its entry price.
    pub entry_price: f64,
    /// Whether the FVG active at entry is known to be filled now (a gap the feature engine
    /// no longer holds is not evidence of a fill: it does not count).
    pub entry_gap_filled: bool,
}

/// The three checks in SPEC order against the bar just closed (`snapshot`, closing at
/// `close`); `adverse_move` is a fraction of entry (0.01 = 1 %).
pub fn check(held: &Held, snapshot: &FeatureSnapshot, close: f64, adverse_move: f64) -> Option<Decay> {
    let structure = snapshot.features[MARKET_STRUCTURE];
    if structure == -held.side.sign() {
        return Some(Decay::StructureTurned);
    }
    if held.entry_gap_filled {
        return Some(Decay::EntryGapFilled);
    }
    let against = held.side.sign() * (held.entry_price - close) / held.entry_price;
    if against >= adverse_move && snapshot.features[LIQUIDITY_GRAB] == 0.0 {
        return Some(Decay::AdverseMove);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bar(structure: f64, grab: f64) -> FeatureSnapshot {
        let mut s = FeatureSnapshot::neutral();
        s.features[MARKET_STRUCTURE] = structure;
        s.features[LIQUIDITY_GRAB] = grab;
        s
    }

    #[test]
    fn each_check_fires_on_its_own_and_in_order() {
        let long = Held { side: Side::Long, entry_price: 100.0, entry_gap_filled: false };
        assert_eq!(check(&long, &bar(0.0, 0.0), 99.5, 0.01), None);
        assert_eq!(check(&long, &bar(-1.0, 0.0), 101.0, 0.01), Some(Decay::StructureTurned));
        assert_eq!(check(&long, &bar(1.0, 0.0), 101.0, 0.01), None, "structure with the position");
        // Exactly 1 % against: decays; with a liquidity grab on the bar it does not.
        assert_eq!(check(&long, &bar(0.0, 0.0), 99.0, 0.01), Some(Decay::AdverseMove));
        assert_eq!(check(&long, &bar(0.0, 1.0), 98.0, 0.01), None);
        let filled = Held { entry_gap_filled: true, ..long };
        assert_eq!(check(&filled, &bar(0.0, 0.0), 100.0, 0.01), Some(Decay::EntryGapFilled));
        assert_eq!(
            check(&filled, &bar(-1.0, 0.0), 90.0, 0.01),
            Some(Decay::StructureTurned),
            "first check wins"
        );
        let short = Held { side: Side::Short, entry_price: 100.0, entry_gap_filled: false };
        assert_eq!(check(&short, &bar(1.0, 0.0), 99.0, 0.01), Some(Decay::StructureTurned));
        assert_eq!(check(&short, &bar(0.0, 0.0), 101.0, 0.01), Some(Decay::AdverseMove));
        assert_eq!(check(&short, &bar(0.0, 0.0), 99.0, 0.01), None, "a short gains when price falls");
    }
}
