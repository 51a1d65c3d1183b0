//! Entry decisions (SPEC §5): the teacher's rules in priority order, the optional 1h trend
//! filter, the student's confidence gate, and the phase switch between them.

use aegis_analytics::feature::{
    FVG_PROXIMITY, LIQUIDITY_GRAB, MARKET_STRUCTURE, MOMENTUM_ATR, ORDER_BLOCKS_COUNT,
};
use aegis_analytics::smc::Sweep;
use aegis_analytics::FeatureSnapshot;

/// Direction of a position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Side {
    /// Bought: gains when price rises.
    Long,
    /// Sold: gains when price falls.
    Short,
}

impl Side {
    /// +1 for a long, −1 for a short.
    pub fn sign(self) -> f64 {
        match self {
            Side::Long => 1.0,
            Side::Short => -1.0,
        }
    }

    /// The other side.
    pub fn opposite(self) -> Side {
        match self {
            Side::Long => Side::Short,
            Side::Short => Side::Long,
        }
    }

    /// `"LONG"` or `"SHORT"`.
    pub fn name(self) -> &'static str {
        match self {
            Side::Long => "LONG",
            Side::Short => "SHORT",
        }
    }
}

/// Which rule (or the model) produced a signal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// Rule 1: a liquidity grab with structure agreeing.
    LiquidityGrab,
    /// Rule 2: an order block in the direction of structure with the FVG on the other side.
    OrderBlock,
    /// Rule 3: momentum of at least 0.8 ATR-units.
    Momentum,
    /// The student's model.
    Model,
    /// A coin: the random-entries baseline of a replay, never a live decision.
    Random,
}

impl Rule {
    /// A stable name for journals and reports.
    pub fn name(self) -> &'static str {
        match self {
            Rule::LiquidityGrab => "liquidity_grab",
            Rule::OrderBlock => "order_block",
            Rule::Momentum => "momentum",
            Rule::Model => "model",
            Rule::Random => "random",
        }
    }
}

/// Who decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// The rules, leverage capped at `teacher_max_leverage`.
    Teacher,
    /// The model, trading when its confidence clears `min_confidence`.
    Student,
}

/// The `[policy]` settings plus the account's leverage ceiling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PolicyConfig {
    /// Closed trades before the student may take over.
    pub teacher_trades: u64,
    /// Leverage cap while the teacher decides.
    pub teacher_max_leverage: f64,
    /// The student trades only at or above this confidence.
    pub min_confidence: f64,
    /// Trade only in the direction of the 1h structure when it is non-zero.
    pub trend_filter_1h: bool,
    /// The account's leverage ceiling (`[risk] max_leverage`).
    pub max_leverage: f64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            teacher_trades: 50,
            teacher_max_leverage: 3.0,
            min_confidence: 0.6,
            trend_filter_1h: true,
            max_leverage: 20.0,
        }
    }
}

/// The model's view of one symbol at one bar.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModelView {
    /// P(price up over the label horizon).
    pub p_up: f64,
    /// Expected return over the horizon (fraction of price).
    pub expected_return: f64,
    /// The ensemble's confidence, 0–1.
    pub confidence: f64,
}

/// A decision to open a position.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Signal {
    /// Direction.
    pub side: Side,
    /// What produced it.
    pub rule: Rule,
    /// The model's probability for this direction (`None` under the teacher: Kelly sizing
    /// then falls back to fixed risk).
    pub probability: Option<f64>,
    /// Strength used to rank signals for rotation: the model's confidence, or for the
    /// teacher 1.0 / 0.9 / 0.8 by rule priority.
    pub strength: f64,
    /// Highest leverage this signal may use.
    pub max_leverage: f64,
}

/// The phase for an account with `closed_trades` trades and (or not) a valid model.
pub fn phase(closed_trades: u64, model_valid: bool, config: &PolicyConfig) -> Phase {
    if closed_trades >= config.teacher_trades && model_valid {
        Phase::Student
    } else {
        Phase::Teacher
    }
}

/// The teacher's rules of SPEC §5, in priority order; `None` when none fires.
pub fn teacher(snapshot: &FeatureSnapshot) -> Option<(Side, Rule)> {
    let f = &snapshot.features;
    let structure = f[MARKET_STRUCTURE];
    if f[LIQUIDITY_GRAB] == 1.0 {
        match snapshot.sweep {
            Sweep::SellSide if structure >= 0.0 => return Some((Side::Long, Rule::LiquidityGrab)),
            Sweep::BuySide if structure <= 0.0 => return Some((Side::Short, Rule::LiquidityGrab)),
            _ => {}
        }
    }
    if f[ORDER_BLOCKS_COUNT] == 1.0 {
        if structure > 0.0 && f[FVG_PROXIMITY] < 0.0 {
            return Some((Side::Long, Rule::OrderBlock));
        }
        if structure < 0.0 && f[FVG_PROXIMITY] > 0.0 {
            return Some((Side::Short, Rule::OrderBlock));
        }
    }
    let momentum = f[MOMENTUM_ATR];
    if momentum >= 0.8 {
        return Some((Side::Long, Rule::Momentum));
    }
    if momentum <= -0.8 {
        return Some((Side::Short, Rule::Momentum));
    }
    None
}

/// The student's gate: the model's direction when its confidence is high enough, with
/// leverage scaled linearly from 1× at `min_confidence` to `max_leverage` at 1.0.
pub fn student(view: &ModelView, config: &PolicyConfig) -> Option<Signal> {
    let finite = view.p_up.is_finite() && view.confidence.is_finite();
    if !finite || view.confidence < config.min_confidence {
        return None;
    }
    let side = if view.p_up >= 0.5 { Side::Long } else { Side::Short };
    let probability = if side == Side::Long { view.p_up } else { 1.0 - view.p_up };
    let span = (1.0 - config.min_confidence).max(f64::EPSILON);
    let scale = ((view.confidence - config.min_confidence) / span).clamp(0.0, 1.0);
    let max_leverage = 1.0 + (config.max_leverage - 1.0).max(0.0) * scale;
    Some(Signal {
        side,
        rule: Rule::Model,
        probability: Some(probability),
        strength: view.confidence,
        max_leverage,
    })
}

/// The decision for one closed bar: the phase's signal, then the 1h trend filter.
pub fn decide(
    snapshot: &FeatureSnapshot,
    phase: Phase,
    model: Option<&ModelView>,
    config: &PolicyConfig,
) -> Option<Signal> {
    if !snapshot.warm {
        return None;
    }
    let signal = match (phase, model) {
        (Phase::Student, Some(view)) => student(view, config)?,
        _ => {
            let (side, rule) = teacher(snapshot)?;
            let strength = match rule {
                Rule::LiquidityGrab => 1.0,
                Rule::OrderBlock => 0.9,
                _ => 0.8,
            };
            Signal { side, rule, probability: None, strength, max_leverage: teacher_leverage(config) }
        }
    };
    let against_trend = match snapshot.structure_1h {
        1 => signal.side == Side::Short,
        -1 => signal.side == Side::Long,
        _ => false,
    };
    if config.trend_filter_1h && against_trend {
        return None;
    }
    Some(signal)
}

/// A random entry for the random-entries baseline: on a warm bar, with probability
/// `probability`, a long or a short by a fair coin, sized and exited as the teacher's are (no
/// model probability, the teacher's leverage cap, no trend filter: the coin is the point).
pub fn random(
    snapshot: &FeatureSnapshot,
    probability: f64,
    rng: &mut crate::rng::Rng,
    config: &PolicyConfig,
) -> Option<Signal> {
    if !snapshot.warm || !rng.chance(probability) {
        return None;
    }
    let side = if rng.next_u64() & 1 == 0 { Side::Long } else { Side::Short };
    Some(Signal {
        side,
        rule: Rule::Random,
        probability: None,
        strength: 0.8,
        max_leverage: teacher_leverage(config),
    })
}

/// The leverage cap of a signal without a model: the teacher's, within the account's.
fn teacher_leverage(config: &PolicyConfig) -> f64 {
    config.teacher_max_leverage.min(config.max_leverage)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_analytics::NAMES;

    fn snapshot(set: &[(usize, f64)], sweep: Sweep) -> FeatureSnapshot {
        let mut s = FeatureSnapshot::neutral();
        s.warm = true;
        for &(i, v) in set {
            s.features[i] = v;
        }
        s.sweep = sweep;
        s
    }

    #[test]
    fn indices_name_the_features_the_rules_read() {
        assert_eq!(NAMES[MARKET_STRUCTURE], "market_structure");
        assert_eq!(NAMES[ORDER_BLOCKS_COUNT], "order_blocks_count");
        assert_eq!(NAMES[LIQUIDITY_GRAB], "liquidity_grab");
        assert_eq!(NAMES[FVG_PROXIMITY], "fvg_proximity");
        assert_eq!(NAMES[MOMENTUM_ATR], "momentum_atr");
    }

    #[test]
    fn the_teacher_applies_its_rules_in_order() {
        let grab = [(LIQUIDITY_GRAB, 1.0), (MARKET_STRUCTURE, 0.0)];
        assert_eq!(teacher(&snapshot(&grab, Sweep::SellSide)), Some((Side::Long, Rule::LiquidityGrab)));
        assert_eq!(teacher(&snapshot(&grab, Sweep::BuySide)), Some((Side::Short, Rule::LiquidityGrab)));
        // A sell-side sweep against bearish structure does not fire rule 1.
        let against = [(LIQUIDITY_GRAB, 1.0), (MARKET_STRUCTURE, -1.0)];
        assert_eq!(teacher(&snapshot(&against, Sweep::SellSide)), None);
        // Rule 1 outranks momentum pointing the other way.
        let both = [(LIQUIDITY_GRAB, 1.0), (MARKET_STRUCTURE, 1.0), (MOMENTUM_ATR, -1.0)];
        assert_eq!(teacher(&snapshot(&both, Sweep::SellSide)), Some((Side::Long, Rule::LiquidityGrab)));
        let ob = [(ORDER_BLOCKS_COUNT, 1.0), (MARKET_STRUCTURE, 1.0), (FVG_PROXIMITY, -0.2)];
        assert_eq!(teacher(&snapshot(&ob, Sweep::None)), Some((Side::Long, Rule::OrderBlock)));
        let ob_short = [(ORDER_BLOCKS_COUNT, 1.0), (MARKET_STRUCTURE, -1.0), (FVG_PROXIMITY, 0.2)];
        assert_eq!(teacher(&snapshot(&ob_short, Sweep::None)), Some((Side::Short, Rule::OrderBlock)));
        // FVG on the wrong side (or none: proximity 0): rule 2 does not fire.
        let ob_flat = [(ORDER_BLOCKS_COUNT, 1.0), (MARKET_STRUCTURE, 1.0), (FVG_PROXIMITY, 0.0)];
        assert_eq!(teacher(&snapshot(&ob_flat, Sweep::None)), None);
        // Momentum boundaries are inclusive at ±0.8.
        assert_eq!(
            teacher(&snapshot(&[(MOMENTUM_ATR, 0.8)], Sweep::None)),
            Some((Side::Long, Rule::Momentum))
        );
        assert_eq!(
            teacher(&snapshot(&[(MOMENTUM_ATR, -0.8)], Sweep::None)),
            Some((Side::Short, Rule::Momentum))
        );
        assert_eq!(teacher(&snapshot(&[(MOMENTUM_ATR, 0.79)], Sweep::None)), None);
        // An outside bar sweeping both sides implies no direction.
        assert_eq!(teacher(&snapshot(&grab, Sweep::Both)), None);
    }

    #[test]
    fn the_trend_filter_blocks_counter_trend_signals_only_when_set() {
        let config = PolicyConfig::default();
        let mut s = snapshot(&[(MOMENTUM_ATR, 1.0)], Sweep::None);
        s.structure_1h = -1;
        assert_eq!(decide(&s, Phase::Teacher, None, &config), None);
        let off = PolicyConfig { trend_filter_1h: false, ..config };
        let signal = decide(&s, Phase::Teacher, None, &off).unwrap();
        assert_eq!((signal.side, signal.max_leverage, signal.probability), (Side::Long, 3.0, None));
        s.structure_1h = 1;
        assert!(decide(&s, Phase::Teacher, None, &config).is_some());
        s.warm = false;
        assert_eq!(decide(&s, Phase::Teacher, None, &config), None, "no decisions before warm-up");
    }

    #[test]
    fn the_student_takes_over_after_enough_trades_with_a_valid_model() {
        let config = PolicyConfig::default();
        assert_eq!(phase(49, true, &config), Phase::Teacher);
        assert_eq!(phase(50, false, &config), Phase::Teacher);
        assert_eq!(phase(50, true, &config), Phase::Student);
        let s = snapshot(&[(MOMENTUM_ATR, 1.0)], Sweep::None);
        let unsure = ModelView { p_up: 0.3, expected_return: -0.01, confidence: 0.59 };
        assert_eq!(decide(&s, Phase::Student, Some(&unsure), &config), None, "below min_confidence");
        let sure = ModelView { confidence: 0.8, ..unsure };
        let signal = decide(&s, Phase::Student, Some(&sure), &config).unwrap();
        assert_eq!((signal.side, signal.rule), (Side::Short, Rule::Model));
        assert!((signal.probability.unwrap() - 0.7).abs() < 1e-12);
        assert!((signal.max_leverage - (1.0 + 19.0 * 0.5)).abs() < 1e-9);
        let certain = ModelView { p_up: 0.9, expected_return: 0.02, confidence: 1.0 };
        assert_eq!(student(&certain, &config).unwrap().max_leverage, 20.0);
        let nan = ModelView { p_up: f64::NAN, ..certain };
        assert_eq!(student(&nan, &config), None);
    }
}
