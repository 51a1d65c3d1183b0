//! Why a control request was refused: the text is what the operator reads in the error line.

use crate::brain::port::LinkError;
use std::path::PathBuf;

/// A control request that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    /// The request names a symbol this run does not have.
    #[error("unknown symbol {0:?}")]
    UnknownSymbol(String),
    /// The request names a shard this run does not have.
    #[error("unknown shard {shard}: this run has shards 0..{shards}")]
    UnknownShard {
        /// The shard asked for.
        shard: usize,
        /// Shards in this run.
        shards: usize,
    },
    /// This run cannot do what was asked (no data dir, a single shard, no mover, …).
    #[error("{0}")]
    Unavailable(&'static str),
    /// `close` on a symbol with no open position.
    #[error("no open position on {0}")]
    NoPosition(String),
    /// The brain did not take or answer the command.
    #[error(transparent)]
    Brain(#[from] LinkError),
    /// The brain answered something the command does not expect.
    #[error("unexpected brain answer {0}")]
    UnexpectedAnswer(String),
    /// A lock shared with another control thread was poisoned by a panic there.
    #[error("{0}")]
    Poisoned(&'static str),
    /// A shard's command ring is full.
    #[error("shard {0}'s command ring is full")]
    ShardBusy(usize),
    /// The target shard did not confirm the subscription in time; the symbol did not move.
    #[error("shard {to} did not confirm {symbol}'s subscription within 10 s; it stays on shard {from}")]
    NotConfirmed {
        /// The symbol.
        symbol: String,
        /// Where it stays.
        from: usize,
        /// Where it was to go.
        to: usize,
    },
    /// A journal could not be read.
    #[error("reading the {journal} journal: {source}")]
    Journal {
        /// Which journal.
        journal: &'static str,
        /// The reason.
        source: std::io::Error,
    },
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: std::io::Error,
    },
    /// The export stopped.
    #[cfg(feature = "export")]
    #[error(transparent)]
    Export(#[from] crate::store::export::ExportError),
}
