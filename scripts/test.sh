#!/usr/bin/env bash
# The project's test command: set up, check formatting and lints, run every test, then a
# fuzz smoke run (every cargo-fuzz target for a few seconds over its seeds and regression
# inputs; AEGIS_FUZZ_SECONDS, default 5, 0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
fuzz_seconds=${AEGIS_FUZZ_SECONDS:-5}
if [ "$fuzz_seconds" != 0 ]; then
  bash scripts/fuzz.sh --seconds "$fuzz_seconds"
fi
