//! Why a run could not start.

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A URL could not be used.
    #[error(transparent)]
    Url(#[from] crate::net::url::UrlError),
    /// A setting is impossible.
    #[error("config: {0}")]
    Config(String),
    /// Another engine holds the data dir.
    #[error(transparent)]
    Locked(#[from] aegis_journal::LockError),
    /// An I/O error (threads, files).
    #[error("{0}")]
    Io(#[from] std::io::Error),
}
