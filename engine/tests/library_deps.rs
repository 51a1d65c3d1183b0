//! The engine library without its binary's edge: built with `--no-default-features`, it
//! links neither the simulator nor the CLI, runtime and logging crates only the binary uses.

use std::process::Command;

/// Crates only the `aegis` binary (feature `cli`) or the tests may pull in. (signal-hook is
/// optional too, but glommio links it anyway.)
const EDGE_ONLY: [&str; 6] = ["exchange-sim", "clap", "anyhow", "tokio", "tracing-subscriber", "parquet"];

fn library_tree(features: &[&str]) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let mut command = Command::new(cargo);
    command.args(["tree", "--offline", "--manifest-path", manifest, "-e", "normal", "--prefix", "none"]);
    command.args(["--format", "{p}", "--no-default-features"]);
    if !features.is_empty() {
        command.args(["--features", &features.join(",")]);
    }
    let out = command.output().expect("running cargo tree");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn the_library_alone_links_no_edge_crate() {
    let crates = library_tree(&[]);
    assert!(crates.iter().any(|c| c == "aegis-recorded"), "the tree was read: {crates:?}");
    for edge in EDGE_ONLY {
        assert!(!crates.iter().any(|c| c == edge), "the library links {edge}");
    }
}

#[test]
fn the_cli_feature_brings_the_edge() {
    let crates = library_tree(&["cli"]);
    for edge in ["exchange-sim", "clap", "anyhow", "signal-hook"] {
        assert!(crates.iter().any(|c| c == edge), "feature cli lacks {edge}");
    }
}
