//! The Aegis ML sidecar (SPEC §7): its own process, reading the engine's experience log,
//! training with libtorch (tch) on CUDA when there is one and on the CPU otherwise, and
//! publishing what beats the last model through the weights file.
//!
//! - [`data`]: bar samples from the experience log as per-symbol sequences, the walk-forward
//!   split and the z-score fitted on its training part.
//! - [`net`]: the three models in tch and their export to the weights file's layout.
//! - [`train`]: one training run — fit, ensemble and calibration on validation, evaluation
//!   on test, the decision to publish.
//! - [`score`]: accuracy, AUC, log-loss, calibration error and the naive baselines.
//! - [`drift`]: permutation importance on the test split and the alerts it raises.
//! - [`watch`]: the loop that trains when enough new trades have closed or when asked.

pub mod data;
pub mod drift;
pub mod net;
pub mod score;
pub mod train;
pub mod watch;
