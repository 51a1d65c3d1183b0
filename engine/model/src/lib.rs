//! In-brain inference (SPEC §7): plain Rust over a published model's `f32` parameters (the
//! layout of [`aegis_wire::weights`]), no libtorch, no allocation.
//!
//! - [`forward`]: normalisation, the logistic regression, the MLP, one LSTM step from kept
//!   state — the same arithmetic as PyTorch's `Linear`, `ReLU` and `LSTM`.
//! - [`ensemble`]: the three models combined with the validation-fitted weights and
//!   calibration into P(up), expected return and confidence.

pub mod ensemble;
pub mod forward;

pub use ensemble::{predict, Prediction, LSTM_WARMUP_BARS};
pub use forward::LstmState;
