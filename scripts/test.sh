#!/usr/bin/env bash
# The project's test command: set up, check formatting and lints, run every test, then a
# fuzz smoke run (every cargo-fuzz target for a few seconds over its seeds and regression
# inputs; AEGIS_FUZZ_SECONDS, default 5, 0 skips it).
set -euo pipefail
cd "$(dirname "$0")/.."
# A fresh clone needs about 12 GB (torch with its CUDA libraries, the debug build, the fuzz
# build); a full disk otherwise shows up as a pip or linker error far from its cause.
free_kb=$(df -Pk . | awk 'NR == 2 { print $4 }')
if [ "${free_kb:-0}" -lt $((12 * 1024 * 1024)) ]; then
  echo "test: warning: only $((free_kb / 1024)) MiB free on $(df -P . | awk 'NR == 2 { print $6 }'); set-up and build need about 12 GB" >&2
fi
bash scripts/setup.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked
fuzz_seconds=${AEGIS_FUZZ_SECONDS:-5}
if [ "$fuzz_seconds" != 0 ]; then
  bash scripts/fuzz.sh --seconds "$fuzz_seconds"
fi
