//! The writer thread: closed bars and their features into CSV files, the desk's events into
//! the journals and experience rings. The only thread that writes files while a run trades;
//! it sleeps when its rings are empty.

use crate::brain::port::ClosedBar;
use crate::desk::events::DeskEvent;
use crate::store::ledger::Ledger;
use aegis_wire::SymbolTable;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Where closed bars and their features are written.
pub(crate) struct BarOutputs {
    pub(crate) bars: Option<PathBuf>,
    pub(crate) features: Option<PathBuf>,
}

impl BarOutputs {
    pub(crate) fn any(&self) -> bool {
        self.bars.is_some() || self.features.is_some()
    }
}

pub(crate) fn create(path: &Option<PathBuf>, header: &str) -> Option<std::io::BufWriter<std::fs::File>> {
    use std::io::Write;
    let path = path.as_ref()?;
    match std::fs::File::create(path) {
        Ok(file) => {
            let mut out = std::io::BufWriter::new(file);
            let _ = writeln!(out, "{header}");
            Some(out)
        }
        Err(e) => {
            tracing::error!(path = %path.display(), error = %e, "cannot create an output file");
            None
        }
    }
}

/// The writer thread: closed bars and features into CSV files, desk events into the
/// journals and experience rings. Returns the journal appends that failed.
pub(crate) fn write_outputs(
    outputs: BarOutputs,
    mut bars_rx: Option<rtrb::Consumer<ClosedBar>>,
    mut desk_rx: Option<rtrb::Consumer<DeskEvent>>,
    mut ledger: Option<Ledger>,
    symbols: Arc<SymbolTable>,
    stop: Arc<AtomicBool>,
) -> u64 {
    use std::io::Write;
    let mut bars = create(&outputs.bars, "symbol,open_time_ms,open,high,low,close,volume,trades");
    let mut features = create(&outputs.features, &format!("symbol,{}", aegis_analytics::report::header()));
    let mut line = String::with_capacity(160);
    loop {
        let stopping = stop.load(Ordering::Acquire);
        let mut wrote = false;
        while let Some(closed) = bars_rx.as_mut().and_then(|rx| rx.pop().ok()) {
            let name = symbols.name(closed.symbol).unwrap_or("?");
            if let Some(out) = &mut bars {
                line.clear();
                line.push_str(name);
                line.push(',');
                closed.bar.csv_fields(&mut line);
                let _ = writeln!(out, "{line}");
            }
            if let (Some(out), Some(snapshot)) = (&mut features, &closed.features) {
                let _ = writeln!(out, "{name},{}", aegis_analytics::report::row(snapshot));
            }
            wrote = true;
        }
        while let Some(event) = desk_rx.as_mut().and_then(|rx| rx.pop().ok()) {
            if let Some(ledger) = &mut ledger {
                ledger.write(&event);
            }
            wrote = true;
        }
        if stopping && !wrote {
            for out in [&mut bars, &mut features].into_iter().flatten() {
                let _ = out.flush();
            }
            return ledger.map_or(0, |mut l| {
                l.sync();
                l.failures()
            });
        }
        if !wrote {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
