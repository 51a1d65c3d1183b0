//! Journal records as JSON and back: closed trades, positions, account snapshots, trade
//! experiences. The writer encodes; restart recovery, the control socket and export decode.
//! A malformed record decodes to `None`, never a panic.

use crate::desk::events::{AccountSnapshot, SNAPSHOT_POSITIONS};
use aegis_journal::Recovery;
use aegis_trading::{ClosedTrade, ExitReason, Position, Rule, Side};
use aegis_wire::experience::TradeExperience;
use aegis_wire::{SymbolId, SymbolTable};
use serde_json::{json, Value};

pub(crate) fn recovery_json(r: &Recovery) -> Value {
    json!({
        "records": r.records,
        "truncated_bytes": r.truncated_bytes,
        "torn": r.torn.map(|t| t.to_string()),
    })
}

pub(crate) fn experience(t: &ClosedTrade) -> TradeExperience {
    TradeExperience {
        trade_id: t.id,
        symbol: t.symbol,
        entry_time_ms: t.entry_time_ms,
        exit_time_ms: t.exit_time_ms,
        side: t.side.sign() as i8,
        roi_pct: t.roi_pct,
        reward: f64::from(t.reward),
        weight: f64::from(t.reward).abs(),
        features: t.features,
    }
}

pub(crate) fn exit_name(reason: ExitReason) -> (&'static str, Option<&'static str>) {
    match reason {
        ExitReason::SignalDecay(d) => (reason.name(), Some(d.name())),
        other => (other.name(), None),
    }
}

/// A closed trade as the trades journal holds it (SPEC §6's fields).
pub fn trade_json(t: &ClosedTrade, symbols: &SymbolTable) -> Value {
    let (reason, decay) = exit_name(t.reason);
    json!({
        "id": t.id, "symbol": name(symbols, t.symbol), "side": t.side.name(), "qty": t.qty,
        "leverage": t.leverage, "entry_price": t.entry_price, "entry_time_ms": t.entry_time_ms,
        "exit_price": t.exit_price, "exit_time_ms": t.exit_time_ms, "reason": reason, "decay": decay,
        "rule": t.rule.name(), "roi_pct": t.roi_pct, "pnl": t.pnl, "fees": t.fees, "funding": t.funding,
        "progress": t.progress, "reward": t.reward, "features": t.features.to_vec(),
    })
}

/// The trade experience a trades-journal record describes.
pub(crate) fn experience_from_json(v: &Value, symbols: &SymbolTable) -> Option<TradeExperience> {
    let features: Vec<f64> = v["features"].as_array()?.iter().filter_map(Value::as_f64).collect();
    let reward = v["reward"].as_f64()?;
    Some(TradeExperience {
        trade_id: v["id"].as_u64()?,
        symbol: symbols.get(v["symbol"].as_str()?.as_bytes())?.0,
        entry_time_ms: v["entry_time_ms"].as_i64()?,
        exit_time_ms: v["exit_time_ms"].as_i64()?,
        side: if v["side"] == "LONG" { 1 } else { -1 },
        roi_pct: v["roi_pct"].as_f64()?,
        reward,
        weight: reward.abs(),
        features: features.try_into().ok()?,
    })
}

/// A position as the positions journal (and the control socket) shows it.
pub fn position_json(p: &Position, symbols: &SymbolTable) -> Value {
    json!({
        "id": p.id, "symbol": name(symbols, p.symbol), "side": p.side.name(), "qty": p.qty,
        "leverage": p.leverage, "entry_price": p.entry_price, "entry_time_ms": p.entry_time_ms,
        "stop": p.stop, "target": p.target, "margin": p.margin, "liquidation": p.liquidation,
        "fees": p.fees, "funding": p.funding, "rule": p.rule.name(), "strength": p.strength,
        "entry_gap": p.entry_gap, "features": p.features.to_vec(), "filled": p.filled,
        "closing": p.closing.map(|r| exit_name(r).0),
    })
}

/// An account snapshot as the positions journal holds it.
pub fn account_json(a: &AccountSnapshot, symbols: &SymbolTable) -> Value {
    json!({
        "time_ms": a.time_ms, "wallet": a.wallet, "equity": a.equity, "closed_trades": a.closed_trades,
        "next_id": a.next_id,
        "positions": a.positions.iter().flatten().map(|p| position_json(p, symbols)).collect::<Vec<_>>(),
    })
}

pub(crate) fn rule_named(text: &str) -> Option<Rule> {
    [Rule::LiquidityGrab, Rule::OrderBlock, Rule::Momentum, Rule::Model, Rule::Random]
        .into_iter()
        .find(|r| r.name() == text)
}

pub(crate) fn position_from_json(v: &Value, symbols: &SymbolTable) -> Option<Position> {
    let f = |key: &str| v.get(key).and_then(Value::as_f64);
    let features: Vec<f64> = v.get("features")?.as_array()?.iter().filter_map(Value::as_f64).collect();
    let symbol = symbols.get(v.get("symbol")?.as_str()?.as_bytes())?;
    Some(Position {
        id: v.get("id")?.as_u64()?,
        symbol: symbol.0,
        side: if v.get("side")?.as_str()? == "LONG" { Side::Long } else { Side::Short },
        qty: f("qty")?,
        leverage: f("leverage")?,
        entry_price: f("entry_price")?,
        entry_time_ms: v.get("entry_time_ms")?.as_i64()?,
        stop: f("stop")?,
        target: f("target")?,
        margin: f("margin")?,
        liquidation: f("liquidation")?,
        fees: f("fees")?,
        funding: f("funding")?,
        rule: rule_named(v.get("rule")?.as_str()?)?,
        strength: f("strength")?,
        entry_gap: v.get("entry_gap").and_then(Value::as_u64),
        features: features.try_into().ok()?,
        filled: v.get("filled")?.as_bool()?,
        // A close that was pending at the crash is decided again on the next bar.
        closing: None,
    })
}

/// Parses a positions-journal record back; `None` for anything malformed (a symbol no
/// longer configured drops its position, which the summary's restore count shows).
pub fn account_from_json(v: &Value, symbols: &SymbolTable) -> Option<AccountSnapshot> {
    let mut positions = [None; SNAPSHOT_POSITIONS];
    for (slot, p) in positions
        .iter_mut()
        .zip(v.get("positions")?.as_array()?.iter().filter_map(|p| position_from_json(p, symbols)))
    {
        *slot = Some(p);
    }
    Some(AccountSnapshot {
        time_ms: v.get("time_ms")?.as_i64()?,
        wallet: v.get("wallet")?.as_f64()?,
        equity: v.get("equity")?.as_f64()?,
        closed_trades: v.get("closed_trades")?.as_u64()?,
        next_id: v.get("next_id")?.as_u64()?,
        positions,
    })
}

/// A symbol's name, or its index when the table no longer has it.
pub(crate) fn name(symbols: &SymbolTable, symbol: u16) -> String {
    symbols.name(SymbolId(symbol)).unwrap_or("?").to_string()
}
