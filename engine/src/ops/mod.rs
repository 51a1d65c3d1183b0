//! Operating a run, off the hot path: the control socket, Prometheus metrics, the
//! watchdog, and the host checks of `aegis doctor`. Reads the threads' counters; reaches
//! the brain only through its command port.
//!
//! - [`control`]: the control socket server, its handlers and the symbol mover.
//! - [`metrics`]: the Prometheus endpoint.
//! - [`watchdog`]: progress counters checked for stalls.
//! - [`doctor`]: host checks for a pinned low-latency run.

pub mod control;
pub mod doctor;
pub mod metrics;
pub mod watchdog;
