#!/usr/bin/env bash
# The main job. Until the engine lands (issue 3) this runs exchange-sim's synthetic market,
# accelerated 60x, with a stock WebSocket client (Python `websockets`) tailing it, for
# ${AEGIS_RUN_FOR:-60s}; the simulator's JSON summary lands in target/exchange-sim-summary.json.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cargo build --release --locked -p exchange-sim
duration=${AEGIS_RUN_FOR:-60s}
exec .venv/bin/python tests/python/tail.py target/release/exchange-sim "$duration" target/exchange-sim-summary.json
