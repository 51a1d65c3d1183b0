//! The model loader (SPEC §7): a thread, not the brain, watches the weights file's sequence
//! counter; on a new publication it copies the active slot into a preallocated spare buffer,
//! validates it (checksum, finiteness; the layout was checked when the file was opened) and
//! hands the buffer to the brain over an SPSC ring. The brain hands the buffer it replaced
//! back over a second ring, so a swap allocates nothing. A refused model is counted and
//! reported to the brain (which raises the alert); the serving model stays.

use aegis_wire::weights::{ModelParams, WeightsError, WeightsReader};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// What the loader hands the brain.
#[derive(Debug)]
pub enum ModelMsg {
    /// A validated model, in a buffer the brain keeps until the next swap.
    New(Box<ModelParams>),
    /// A publication was refused: why (for the alert).
    Refused(&'static str),
}

/// The loader's counters.
#[derive(Debug, Default)]
pub struct ModelStats {
    /// Generation handed to the brain last (0: none).
    pub generation: AtomicU64,
    /// Publications refused (torn, corrupt, not finite, another layout).
    pub rejected: AtomicU64,
    /// Generation the brain is serving (0: the teacher only).
    pub serving: AtomicU64,
    /// Models the brain swapped in.
    pub swaps: AtomicU64,
}

/// The brain's ends of the loader's rings.
pub struct ModelLink {
    /// Validated models and refusals.
    pub incoming: rtrb::Consumer<ModelMsg>,
    /// Buffers the brain no longer uses.
    pub returns: rtrb::Producer<Box<ModelParams>>,
    /// Counters.
    pub stats: Arc<ModelStats>,
}

/// Buffers in circulation: the brain's, one being filled, one in flight.
const BUFFERS: usize = 3;
/// How often the loader looks at the sequence counter.
const POLL: Duration = Duration::from_millis(20);

/// The refusal's alert text.
fn reason(e: &WeightsError) -> &'static str {
    match e {
        WeightsError::Torn => "model refused: torn read (the writer kept publishing)",
        WeightsError::Checksum { .. } => "model refused: checksum mismatch",
        WeightsError::NotFinite { .. } => "model refused: a parameter is NaN or infinite",
        WeightsError::Layout { .. } => "model refused: the weights file has another layout",
        WeightsError::Io { .. } => "model refused: the weights file cannot be read",
    }
}

/// Why a weights file cannot serve a replay (`aegis replay --model`).
#[derive(Debug, thiserror::Error)]
#[error("{}: {}", path.display(), why)]
pub struct ModelFileError {
    /// The weights file.
    pub path: PathBuf,
    /// The refusal, as the live loader words it.
    pub why: String,
}

/// The model published in `path` now, validated as the loader validates it: a file of
/// another layout, a corrupt or non-finite model, or a file with nothing published is
/// refused in the loader's words.
pub fn read_published(path: &std::path::Path) -> Result<Box<ModelParams>, ModelFileError> {
    let refuse = |why: String| ModelFileError { path: path.to_path_buf(), why };
    let reader = WeightsReader::open(path).map_err(|e| refuse(format!("{} ({e})", reason(&e))))?;
    let mut model = Box::new(ModelParams::zeroed());
    match reader.read_into(&mut model) {
        Ok(true) => {}
        Ok(false) => return Err(refuse("no model has been published in it".into())),
        Err(e) => return Err(refuse(format!("{} ({e})", reason(&e)))),
    }
    Ok(model)
}

/// The caller's end of a [`fed_link`]: hands models over itself (a replay, training as it goes).
pub struct ModelFeed {
    to_brain: rtrb::Producer<ModelMsg>,
    spent: rtrb::Consumer<Box<ModelParams>>,
    stats: Arc<ModelStats>,
}

impl ModelFeed {
    /// Hands `model` to the brain (it swaps at its next closed bar). Buffers the brain gave
    /// back are dropped: a replay is not the hot path.
    pub fn hand_over(&mut self, model: Box<ModelParams>) {
        while self.spent.pop().is_ok() {}
        self.stats.generation.store(model.generation, Ordering::Relaxed);
        // The brain takes one model per closed bar; a replay hands one over per training.
        let _ = self.to_brain.push(ModelMsg::New(model));
    }

    /// The counters the brain's end updates.
    pub fn stats(&self) -> &Arc<ModelStats> {
        &self.stats
    }
}

/// A link with no loader thread behind it: the caller feeds it.
pub fn fed_link() -> (ModelFeed, ModelLink) {
    let (to_brain, incoming) = rtrb::RingBuffer::new(BUFFERS + 1);
    let (returns, spent) = rtrb::RingBuffer::<Box<ModelParams>>::new(BUFFERS + 1);
    let stats = Arc::new(ModelStats::default());
    (ModelFeed { to_brain, spent, stats: stats.clone() }, ModelLink { incoming, returns, stats })
}

/// Starts the loader thread on `path` (which may not exist yet); returns the brain's link
/// and the thread, which ends when `stop` is set.
pub fn spawn(
    path: PathBuf,
    stop: Arc<AtomicBool>,
) -> std::io::Result<(ModelLink, std::thread::JoinHandle<()>)> {
    let (mut to_brain, incoming) = rtrb::RingBuffer::new(BUFFERS + 1);
    let (returns, mut spares) = rtrb::RingBuffer::<Box<ModelParams>>::new(BUFFERS + 1);
    let stats = Arc::new(ModelStats::default());
    let link = ModelLink { incoming, returns, stats: stats.clone() };
    let mut pool: Vec<Box<ModelParams>> = (0..BUFFERS).map(|_| Box::new(ModelParams::zeroed())).collect();
    let thread = std::thread::Builder::new().name("aegis-model-loader".into()).spawn(move || {
        let mut reader: Option<WeightsReader> = None;
        let (mut last_sequence, mut layout_refused) = (u32::MAX, false);
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(POLL);
            while let Ok(buffer) = spares.pop() {
                pool.push(buffer);
            }
            let Some(r) = reader.as_ref() else {
                match WeightsReader::open(&path) {
                    Ok(r) => reader = Some(r),
                    Err(e @ WeightsError::Layout { .. }) if !layout_refused => {
                        layout_refused = true;
                        tracing::warn!(error = %e, "weights file refused");
                        stats.rejected.fetch_add(1, Ordering::Relaxed);
                        let _ = to_brain.push(ModelMsg::Refused(reason(&e)));
                    }
                    Err(_) => {}
                }
                continue;
            };
            let sequence = r.sequence();
            if sequence == last_sequence || sequence & 1 == 1 {
                continue;
            }
            let Some(mut buffer) = pool.pop() else { continue };
            match r.read_into(&mut buffer) {
                Ok(true) if buffer.generation != stats.generation.load(Ordering::Relaxed) => {
                    last_sequence = sequence;
                    stats.generation.store(buffer.generation, Ordering::Relaxed);
                    tracing::info!(
                        generation = buffer.generation,
                        "model validated; handing it to the brain"
                    );
                    if let Err(rtrb::PushError::Full(ModelMsg::New(b))) = to_brain.push(ModelMsg::New(buffer))
                    {
                        pool.push(b);
                    }
                }
                Ok(_) => {
                    last_sequence = sequence;
                    pool.push(buffer);
                }
                Err(e) => {
                    // A torn read is tried again at the next poll; anything else waits for
                    // the next publication.
                    if e != WeightsError::Torn {
                        last_sequence = sequence;
                    }
                    tracing::warn!(error = %e, "model refused; the serving model stays");
                    stats.rejected.fetch_add(1, Ordering::Relaxed);
                    let _ = to_brain.push(ModelMsg::Refused(reason(&e)));
                    pool.push(buffer);
                }
            }
        }
    })?;
    Ok((link, thread))
}
