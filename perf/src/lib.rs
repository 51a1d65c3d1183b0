//! Aegis benchmarks.
