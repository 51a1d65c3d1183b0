//! The reward score of a closed trade (SPEC §6): how far the trade got towards its plan,
//! bucketed — independent of leverage, since size is set by risk, not by leverage.

/// Net PnL over the plan: over the planned profit at the target when the trade made
/// money, over the planned loss at the stop when it did not (a trade that reached its
/// target scores ≈ 1, one that hit its stop ≈ 1 on the loss side). Always ≥ 0.
pub fn progress(net_pnl: f64, planned_profit: f64, planned_loss: f64) -> f64 {
    let plan = if net_pnl > 0.0 { planned_profit } else { planned_loss };
    (net_pnl.abs() / plan.max(f64::MIN_POSITIVE)).min(f64::MAX)
}

/// The score for a trade with this net PnL and plan. A break-even trade (net exactly 0,
/// fees included) counts as a loss of progress 0: −1.
pub fn score(net_pnl: f64, planned_profit: f64, planned_loss: f64) -> i8 {
    let p = progress(net_pnl, planned_profit, planned_loss);
    if net_pnl > 0.0 {
        match p {
            p if p <= 0.30 => 1,
            p if p <= 0.50 => 3,
            p if p <= 0.80 => 5,
            _ => 8,
        }
    } else {
        match p {
            p if p <= 0.30 => -1,
            p if p <= 0.50 => -3,
            p if p <= 0.80 => -7,
            _ => -10,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boundaries_of_the_table() {
        // Plan: +100 at the target, −40 at the stop.
        let cases = [
            (30.0, 1),
            (30.000001, 3),
            (50.0, 3),
            (50.1, 5),
            (80.0, 5),
            (80.1, 8),
            (250.0, 8),
            (0.0, -1),
            (-12.0, -1),
            (-12.1, -3),
            (-20.0, -3),
            (-20.1, -7),
            (-32.0, -7),
            (-32.1, -10),
            (-500.0, -10),
        ];
        for (pnl, want) in cases {
            assert_eq!(score(pnl, 100.0, 40.0), want, "net pnl {pnl}");
        }
        assert!((progress(100.0, 100.0, 40.0) - 1.0).abs() < 1e-12);
        assert!((progress(-40.0, 100.0, 40.0) - 1.0).abs() < 1e-12);
        assert_eq!(score(1.0, 0.0, 0.0), 8, "a degenerate plan never divides by zero");
    }
}
