//! Why a replay could not run.

/// Why a replay could not run.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A recorded file could not be read.
    #[error(transparent)]
    Input(#[from] aegis_recorded::replay::ReplayError),
    /// The journal directory holds a previous run.
    #[error("{0}: already holds journals; a backtest writes into an empty directory")]
    NotEmpty(String),
    /// Journals or rings could not be opened.
    #[error(transparent)]
    Ledger(#[from] crate::store::ledger::LedgerError),
    /// The input has no symbol or no stream the engine reads.
    #[error("nothing to replay: {0}")]
    Empty(String),
    /// Another engine holds the journal directory.
    #[error(transparent)]
    Locked(#[from] aegis_journal::LockError),
    /// Files.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The weights file given with `--model` cannot serve.
    #[error("--model {0}")]
    Model(#[from] crate::model_loader::ModelFileError),
    /// `--learn` cannot train: the sidecar is missing or could not be started.
    #[error("--learn: {0}")]
    Learn(String),
}
