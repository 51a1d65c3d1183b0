//! Configuration, one path from the file to the threads: the TOML file as users write it
//! ([`file`]), command-line `--set` overrides checked by the same loader ([`overrides`]),
//! the typed run settings with every default once ([`run`]), and the builder between them
//! ([`build`]). The binary adds its command-line overrides to what `build`
//! returns; tests and the benchmark harness start from `RunConfig::default()`.

pub mod build;
pub mod file;
pub mod overrides;
pub mod run;

pub use build::build;
pub use file::{parse, ConfigError, FileConfig};
pub use overrides::parse_with_overrides;
pub use run::RunConfig;

/// The embedded default configuration (config/default.toml).
pub const DEFAULT_CONFIG: &str = include_str!("../../../config/default.toml");
