#!/usr/bin/env bash
# Runs every cargo-fuzz target (or those named) for a bounded time each, starting from the
# checked-in seeds (fuzz/seeds/TARGET) plus whatever corpus earlier runs left in
# fuzz/corpus/TARGET. A crash stops the script with the input kept in fuzz/artifacts/TARGET.
# scripts/test.sh runs every target for 5 s as a smoke test; long runs belong here, their
# results in RELIABILITY.md.
#   bash scripts/fuzz.sh [--seconds N] [TARGET...]      (default 30 s per target)
# Needs the nightly toolchain and cargo-fuzz (scripts/setup.sh installs both).
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=30
if [ "${1:-}" = "--seconds" ]; then seconds=$2; shift 2; fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --version 0.13.2 --locked
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(sed -n 's/^name = "\(.*\)"/\1/p' fuzz/Cargo.toml | grep -v '^aegis-fuzz$')
fi
# cargo-fuzz sets RUSTFLAGS, which hides .cargo/config.toml's: ask for the same CPU level
# so the vector digit parser (engine/src/feed/digits.rs) is the code being fuzzed.
export RUSTFLAGS="${RUSTFLAGS:-} -C target-cpu=x86-64-v2"
cd fuzz
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  dirs=("corpus/$target")
  [ -d "seeds/$target" ] && dirs+=("seeds/$target")
  echo "fuzz: $target for ${seconds}s"
  # New inputs go to the first directory (the ignored corpus), never into the seeds.
  set +e
  cargo +nightly fuzz run "$target" "${dirs[@]}" -- -max_total_time="$seconds" 2>&1 \
    | grep -E '^Done|SUMMARY|ERROR|panicked'
  status=${PIPESTATUS[0]}
  set -e
  [ "$status" -eq 0 ] || { echo "fuzz: $target FAILED (see fuzz/artifacts/$target)"; exit 1; }
done
