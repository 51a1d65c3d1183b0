#!/usr/bin/env bash
# The main job: `aegis run` on the embedded default config — an in-process exchange-sim
# (synthetic market, 20 symbols, 60x accelerated) and the engine against it over real
# loopback WebSocket and REST, with live progress, for ${AEGIS_RUN_FOR:-3m}. Fully offline.
# The run summary lands in target/aegis-summary.json, closed 1m bars in target/aegis-bars.csv
# and their 18 features in target/aegis-features.csv. While it runs, `target/release/aegisctl
# --socket target/aegis-data/aegis.sock status` (or positions, pause, flatten, …) operates it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --main
cargo build --release --locked -p aegis -p aegisctl -p aegis-sidecar
exec target/release/aegis run --for "${AEGIS_RUN_FOR:-3m}" \
  --summary target/aegis-summary.json --bars-out target/aegis-bars.csv --features-out target/aegis-features.csv
