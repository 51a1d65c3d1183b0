#!/usr/bin/env bash
# Crash recovery at random moments (issue 9): the crash test with N `kill -9`s (default 50)
# of a paper-trading run, each followed by a restart on the same data dir, then a clean run;
# after every kill no journaled trade may be lost, rewritten or doubled, and at the end open
# positions, the experience log and the wallet must all agree with the journal. The test
# suite runs the same test with 2 kills; the last result of this script is in RELIABILITY.md.
#   bash scripts/crash-loop.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
AEGIS_CRASH_KILLS=${1:-50} cargo test --release --locked -p aegis --test crash -- --nocapture
