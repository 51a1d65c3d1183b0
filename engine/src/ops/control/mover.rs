//! Make-before-break moves of a symbol between shards (`rebalance`, `drain`).

use super::error::ControlError;
use crate::feed::shard::ShardStats;
use crate::feed::subscription::ShardCommand;
use aegis_wire::SymbolTable;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Moves symbol index `.0` to shard `.1`, answering what it did.
pub type Mover = Box<dyn Fn(usize, usize) -> Result<Value, ControlError> + Send + Sync>;

/// Where a symbol is (and is moving to), per symbol index.
#[derive(Clone, Debug, Default)]
pub struct Assignment {
    /// Shard delivering each symbol.
    pub shard: Vec<usize>,
}

/// How long both shards deliver a moving symbol before the source lets go.
pub const MOVE_OVERLAP: Duration = Duration::from_millis(500);

/// How long a shard has to confirm a subscription.
const SUBSCRIBE_PATIENCE: Duration = Duration::from_secs(10);

/// The make-before-break mover: the target shard subscribes, and once the
/// exchange confirmed it both shards deliver for [`MOVE_OVERLAP`] (the brain drops what it
/// already applied, by event identity) before the source unsubscribes. One move at a time.
pub fn mover(
    commands: Vec<Mutex<rtrb::Producer<ShardCommand>>>,
    shards: Vec<Arc<ShardStats>>,
    assignment: Arc<Mutex<Assignment>>,
    table: Arc<SymbolTable>,
) -> Mover {
    let next_id = std::sync::atomic::AtomicU64::new(1);
    let one_at_a_time = Mutex::new(());
    Box::new(move |symbol, to| {
        let _guard = one_at_a_time.lock().map_err(|_| ControlError::Poisoned("a previous move panicked"))?;
        let name = table.name(aegis_wire::SymbolId(symbol as u16)).unwrap_or("?").to_string();
        let from =
            assignment.lock().map_err(|_| ControlError::Poisoned("assignment poisoned"))?.shard[symbol];
        if from == to {
            return Ok(json!({ "symbol": name, "shard": to, "moved": false }));
        }
        let send = |shard: usize, command: ShardCommand| -> Result<u64, ControlError> {
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            let command = match command {
                ShardCommand::Subscribe { symbol, .. } => ShardCommand::Subscribe { symbol, id },
                ShardCommand::Unsubscribe { symbol, .. } => ShardCommand::Unsubscribe { symbol, id },
            };
            let mut ring =
                commands[shard].lock().map_err(|_| ControlError::Poisoned("shard command ring poisoned"))?;
            ring.push(command).map_err(|_| ControlError::ShardBusy(shard))?;
            Ok(id)
        };
        let confirmed = |shard: usize, id: u64| {
            let deadline = Instant::now() + SUBSCRIBE_PATIENCE;
            while shards[shard].acked.load(Ordering::Relaxed) < id {
                if Instant::now() > deadline {
                    return false;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            true
        };
        let sym = aegis_wire::SymbolId(symbol as u16);
        let id = send(to, ShardCommand::Subscribe { symbol: sym, id: 0 })?;
        if !confirmed(to, id) {
            let _ = send(to, ShardCommand::Unsubscribe { symbol: sym, id: 0 });
            return Err(ControlError::NotConfirmed { symbol: name, from, to });
        }
        std::thread::sleep(MOVE_OVERLAP);
        let id = send(from, ShardCommand::Unsubscribe { symbol: sym, id: 0 })?;
        assignment.lock().map_err(|_| ControlError::Poisoned("assignment poisoned"))?.shard[symbol] = to;
        let released = confirmed(from, id);
        Ok(
            json!({ "symbol": name, "from": from, "to": to, "overlap_ms": MOVE_OVERLAP.as_millis() as u64, "source_released": released }),
        )
    })
}
