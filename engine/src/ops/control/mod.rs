//! The control plane (SPEC §9): a Unix-domain socket (mode 0600) speaking versioned,
//! line-delimited JSON, served by one thread off the hot path. Queries read the shared
//! counters; actions reach the brain through a small command ring and come back through a
//! reply ring, which the brain polls between batches (it never blocks on them).
//!
//! - [`context`]: what the control thread reads and drives.
//! - [`server`]: the socket, its peer check and one thread per client.
//! - [`handlers`]: one answer per request.
//! - [`mover`]: make-before-break moves of symbols between shards.
//! - [`error`]: why a request was refused.

pub mod context;
pub mod error;
pub mod handlers;
pub mod mover;
pub mod server;

pub use context::ControlContext;
pub use error::ControlError;
pub use handlers::handle;
pub use mover::{mover, Assignment, Mover, MOVE_OVERLAP};
pub use server::{peer_uid, serve, ControlServer, MAX_CLIENTS};
