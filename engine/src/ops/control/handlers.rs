//! One answer per control request: queries read the shared counters, actions go to the
//! brain through its command port, moves to the mover.

use super::context::ControlContext;
use super::error::ControlError;
use crate::brain::port::{BrainCommand, BrainReply};
use aegis_control::Request;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;

fn symbol_index(ctx: &ControlContext, name: &str) -> Result<u16, ControlError> {
    ctx.table.get(name.as_bytes()).map(|id| id.0).ok_or_else(|| ControlError::UnknownSymbol(name.to_string()))
}

fn check_shard(ctx: &ControlContext, shard: usize) -> Result<(), ControlError> {
    if shard < ctx.shards.len() {
        return Ok(());
    }
    Err(ControlError::UnknownShard { shard, shards: ctx.shards.len() })
}

fn ask(ctx: &ControlContext, command: BrainCommand) -> Result<Vec<BrainReply>, ControlError> {
    Ok(ctx.link.lock().map_err(|_| ControlError::Poisoned("the brain link is poisoned"))?.ask(command)?)
}

fn done(ctx: &ControlContext, command: BrainCommand) -> Result<bool, ControlError> {
    match ask(ctx, command)?.last() {
        Some(BrainReply::Done(done)) => Ok(*done),
        other => Err(ControlError::UnexpectedAnswer(format!("{other:?}"))),
    }
}

/// Answers one request.
pub fn handle(ctx: &ControlContext, request: &Request) -> Result<Value, ControlError> {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    match request {
        Request::Status => Ok(status(ctx)),
        Request::Shards => Ok(shards(ctx)),
        Request::Symbols => Ok(symbols(ctx)),
        Request::Pause => done(ctx, BrainCommand::Pause).map(|_| json!({ "paused": true })),
        Request::Resume => done(ctx, BrainCommand::Resume).map(|_| json!({ "paused": false })),
        Request::Close { symbol } => {
            let index = symbol_index(ctx, symbol)?;
            if done(ctx, BrainCommand::Close(index))? {
                Ok(json!({ "symbol": symbol.to_ascii_uppercase(), "closing": "at its next trade" }))
            } else {
                Err(ControlError::NoPosition(symbol.to_ascii_uppercase()))
            }
        }
        Request::Flatten => {
            let before = load(&ctx.desk.open_positions);
            done(ctx, BrainCommand::Flatten)?;
            Ok(json!({ "closed": before, "open_positions": load(&ctx.desk.open_positions) }))
        }
        Request::Positions => {
            let positions: Vec<Value> = ask(ctx, BrainCommand::Positions)?
                .iter()
                .filter_map(|r| match r {
                    BrainReply::Position(p) => Some(crate::store::codec::position_json(p, &ctx.table)),
                    _ => None,
                })
                .collect();
            Ok(json!({ "positions": positions }))
        }
        Request::Model => {
            let model = |f: fn(&crate::model_loader::ModelStats) -> &std::sync::atomic::AtomicU64| {
                ctx.model.as_ref().map_or(0, |m| load(f(m)))
            };
            let history = match &ctx.data_dir {
                Some(dir) => crate::store::ledger::read_journal(dir, "models")
                    .map_err(|source| ControlError::Journal { journal: "models", source })?
                    .into_iter()
                    .filter_map(Result::ok)
                    .collect::<Vec<Value>>(),
                None => Vec::new(),
            };
            Ok(json!({
                "phase": ctx.desk.phase_name(),
                "model_generation": model(|m| &m.serving),
                "models_rejected": model(|m| &m.rejected),
                "history": history,
            }))
        }
        Request::Train => {
            let dir = ctx.data_dir.as_ref().ok_or(ControlError::Unavailable(
                "no data dir: the sidecar trains from its experience log",
            ))?;
            let request = dir.join("models").join("train.request");
            let io = |source| ControlError::Io { path: request.clone(), source };
            std::fs::create_dir_all(dir.join("models")).map_err(io)?;
            std::fs::write(&request, b"").map_err(io)?;
            Ok(json!({ "requested": true, "request": request.display().to_string() }))
        }
        Request::Alerts => alerts(ctx),
        Request::Latency => Ok(latency(ctx)),
        Request::Export { out } => export(ctx, out),
        Request::Rebalance { symbol, to } => {
            let index = symbol_index(ctx, symbol)?;
            check_shard(ctx, *to)?;
            let mover = ctx
                .mover
                .as_ref()
                .ok_or(ControlError::Unavailable("rebalancing is not available in this run"))?;
            mover(usize::from(index), *to)
        }
        Request::Drain { shard } => {
            check_shard(ctx, *shard)?;
            if ctx.shards.len() < 2 {
                return Err(ControlError::Unavailable("a run with one shard has nowhere to drain to"));
            }
            let mover = ctx
                .mover
                .as_ref()
                .ok_or(ControlError::Unavailable("rebalancing is not available in this run"))?;
            let on_shard: Vec<usize> = {
                let a = ctx.assignment.lock().map_err(|_| ControlError::Poisoned("assignment poisoned"))?;
                a.shard.iter().enumerate().filter(|(_, s)| **s == *shard).map(|(i, _)| i).collect()
            };
            let others: Vec<usize> = (0..ctx.shards.len()).filter(|s| s != shard).collect();
            let mut moved = Vec::new();
            for (k, symbol) in on_shard.iter().enumerate() {
                moved.push(mover(*symbol, others[k % others.len()])?);
            }
            Ok(json!({ "shard": shard, "moved": moved }))
        }
    }
}

fn status(ctx: &ControlContext) -> Value {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let d = &ctx.desk;
    json!({
        "uptime_s": ctx.started.elapsed().as_secs_f64(),
        "transport": ctx.transport,
        "threads": ctx.threads,
        "shards": ctx.shards.len(),
        "symbols": ctx.table.len(),
        "events": ctx.brain.events_by_kind.iter().map(load).sum::<u64>(),
        "ring_drops": ctx.rings.iter().map(|r| load(&r.dropped)).sum::<u64>(),
        "bars_closed": ctx.brain.symbols.iter().map(|s| load(&s.bars_closed)).sum::<u64>(),
        "trades_closed": load(&d.trades_closed),
        "open_positions": load(&d.open_positions),
        "pnl": d.pnl(),
        "equity": d.equity(),
        "phase": d.phase_name(),
        "paused": load(&d.paused) == 1,
        "alerts": load(&d.alerts),
        "listing_changes": load(&d.listing_changes),
        "symbols_not_trading": load(&d.symbols_not_trading),
        "watchdog_alerts": load(&ctx.watchdog_alerts),
        "shard_restarts": ctx.shards.iter().map(|s| load(&s.restarts)).sum::<u64>(),
        "model_generation": ctx.model.as_ref().map_or(0, |m| load(&m.serving)),
        "placement": placement(ctx),
    })
}

/// Where each pinned thread runs, as it read it back.
fn placement(ctx: &ControlContext) -> Value {
    crate::cpu::to_json(&crate::cpu::threads(ctx.shards.iter().map(|s| &s.core), &ctx.brain.core))
}

fn shards(ctx: &ControlContext) -> Value {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let assignment = ctx.assignment.lock().map(|a| a.shard.clone()).unwrap_or_default();
    let list: Vec<Value> = ctx
        .shards
        .iter()
        .zip(&ctx.rings)
        .enumerate()
        .map(|(id, (s, r))| {
            let symbols: Vec<&str> = ctx
                .table
                .iter()
                .filter(|(sym, _)| assignment.get(usize::from(sym.0)) == Some(&id))
                .map(|(_, name)| name)
                .collect();
            json!({
                "shard": id,
                "symbols": symbols,
                "messages": load(&s.messages),
                "records": load(&s.records),
                "ring_depth": load(&r.pushed).saturating_sub(load(&r.drained)),
                "ring_drops": load(&r.dropped),
                "reconnects": load(&s.reconnects),
                "restarts": load(&s.restarts),
                "parse_errors": load(&s.parse_errors),
                "heartbeat": load(&s.heartbeat),
            })
        })
        .collect();
    json!({ "shards": list })
}

fn symbols(ctx: &ControlContext) -> Value {
    let load = |c: &std::sync::atomic::AtomicU64| c.load(Ordering::Relaxed);
    let assignment = ctx.assignment.lock().map(|a| a.shard.clone()).unwrap_or_default();
    let list: Vec<Value> = ctx
        .table
        .iter()
        .map(|(id, name)| {
            let s = &ctx.brain.symbols[usize::from(id.0)];
            json!({
                "symbol": name,
                "shard": assignment.get(usize::from(id.0)),
                "events": load(&s.events),
                "bars_closed": load(&s.bars_closed),
                "trade_id_gaps": load(&s.trade_id_gaps),
                "trade_ids_recovered": load(&s.trade_ids_recovered),
                "duplicates_dropped": load(&s.duplicates_dropped),
                "features_warm": load(&s.features_warm) == 1,
            })
        })
        .collect();
    json!({ "symbols": list })
}

fn latency(ctx: &ControlContext) -> Value {
    let stages: Vec<Value> = crate::latency::STAGES
        .iter()
        .enumerate()
        .map(|(i, stage)| {
            let q = |q: f64| ctx.stages.quantile_bound(i, q);
            json!({
                "stage": stage,
                "count": ctx.stages.count(i),
                "p50_le_ns": q(0.5), "p90_le_ns": q(0.9), "p99_le_ns": q(0.99), "p999_le_ns": q(0.999),
            })
        })
        .collect();
    json!({ "stages": stages, "note": "upper bounds of power-of-two buckets since start" })
}

/// Writes the journals as CSV and Parquet under `out`.
#[cfg(feature = "export")]
fn export(ctx: &ControlContext, out: &str) -> Result<Value, ControlError> {
    let dir =
        ctx.data_dir.as_ref().ok_or(ControlError::Unavailable("no data dir: this run keeps no journals"))?;
    let exported = crate::store::export::export(dir, std::path::Path::new(out), &ctx.data)?;
    Ok(
        json!({ "out": out, "trades": exported.trades, "experiences": exported.experiences, "samples": exported.samples }),
    )
}

/// Refuses: this engine was built without the `export` feature.
#[cfg(not(feature = "export"))]
fn export(_ctx: &ControlContext, _out: &str) -> Result<Value, ControlError> {
    Err(ControlError::Unavailable("export is not built into this engine (cargo feature `export`)"))
}

fn alerts(ctx: &ControlContext) -> Result<Value, ControlError> {
    let count = ctx.desk.alerts.load(Ordering::Relaxed);
    let Some(dir) = &ctx.data_dir else {
        return Ok(
            json!({ "count": count, "recent": [], "note": "no data dir: alerts are counted, not kept" }),
        );
    };
    let records = crate::store::ledger::read_journal(dir, "alerts")
        .map_err(|source| ControlError::Journal { journal: "alerts", source })?;
    let recent: Vec<Value> = records.into_iter().filter_map(Result::ok).rev().take(50).collect();
    Ok(json!({ "count": count, "recent": recent }))
}
