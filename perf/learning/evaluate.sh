#!/usr/bin/env bash
# The learning loop's evaluation, written up in perf/LEARNING.md. Long: ~15 minutes on a
# 2-core VM; not part of the tests.
#
#  1. Three synthetic markets (exchange-sim seeds 1–3: 20 symbols, 1,000 bars of history,
#     then 3,000 streamed minutes; closed 1m klines only).
#  2. Each replayed with --learn on the embedded config (the loop walks forward: every
#     training sees only what the replay has closed so far, its model trades what follows),
#     with the teacher alone, buy-and-hold and random entries (5 seeds) over the same bars.
#  3. A sweep on a local Ray with --learn: ml.train_every × policy.min_confidence over the
#     three markets, chosen on the earlier inputs and reported on the next.
#  4. The shared recordings, teacher only, with the report's verdict on their length.
#  5. Sweep throughput: the same 8 short replays one after another, then on Ray.
#
# Usage: perf/learning/evaluate.sh [OUT]   (default target/evaluation)
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-target/evaluation}
mkdir -p "$out/markets" "$out/learn" "$out/shared" "$out/throughput"
cargo build --release --locked -p aegis -p aegis-sidecar -p exchange-sim
bin=target/release
py=.venv/bin/python

for seed in 1 2 3; do
  market="$out/markets/market-$seed.txt"
  [ -s "$market" ] || "$bin/exchange-sim" --synthetic --seed "$seed" --dump /dev/stdout \
      --dump-minutes 3000 --dump-streams kline_1m 2>/dev/null | grep '"x":true' > "$market"
done

for seed in 1 2 3; do
  rm -rf "$out/learn/$seed"; mkdir -p "$out/learn/$seed"
  "$bin/aegis" replay --quiet --learn "$out/markets/market-$seed.txt" --journal "$out/learn/$seed/data" \
    --summary "$out/learn/$seed/report.json" --plot "$out/learn/$seed/equity.svg"
done

cat > "$out/learn-sweep.toml" <<SPEC
inputs = ["markets/market-1.txt", "markets/market-2.txt", "markets/market-3.txt"]
learn = true
random_seeds = 3
[grid]
"ml.train_every" = [25, 50]
"policy.min_confidence" = [0.55, 0.65]
SPEC
$py tools/sweep/sweep.py "$out/learn-sweep.toml" --out "$out/learn-sweep" --aegis "$bin/aegis" || true

for f in ../shared/data/klines/*_1m.csv ../shared/data/klines/*_1m-*.csv ../shared/data/ws/*usdm*.ws.txt \
         ../shared/data/trades/*trades*.csv; do
  [ -e "$f" ] || continue
  "$bin/aegis" replay --quiet "$f" --summary "$out/shared/$(basename "$f").json" 2>"$out/shared/$(basename "$f").err" || true
done

# Throughput: 4 combinations × 2 inputs of 700 minutes, one after another, then on Ray.
head -n 14000 "$out/markets/market-1.txt" > "$out/throughput/early.txt"
sed -n 14001,28000p "$out/markets/market-1.txt" > "$out/throughput/late.txt"
cat > "$out/throughput/spec.toml" <<SPEC
inputs = ["early.txt", "late.txt"]
random_seeds = 0
[grid]
"risk.take_profit" = [0.03, 0.05]
"risk.stop_loss" = [0.01, 0.02]
SPEC
start=$(date +%s%N)
for tp in 0.03 0.05; do for sl in 0.01 0.02; do for input in early late; do
  "$bin/aegis" replay --quiet --random-seeds 0 --set risk.take_profit=$tp --set risk.stop_loss=$sl \
    "$out/throughput/$input.txt" > /dev/null
done; done; done
end=$(date +%s%N)
echo "{\"sequential_tasks\": 8, \"sequential_ms\": $(( (end - start) / 1000000 ))}" > "$out/throughput/sequential.json"
$py tools/sweep/sweep.py "$out/throughput/spec.toml" --out "$out/throughput/sweep" --aegis "$bin/aegis"
# Single-threaded replay speed: the replay's own count of messages and seconds (its loop,
# loading excluded), teacher only.
"$bin/aegis" replay --random-seeds 0 "$out/markets/market-1.txt" --summary "$out/throughput/replay-one.json" \
  2>&1 | tail -n 1 > "$out/throughput/replay-one.txt"
echo "evaluation: outputs in $out"
.venv/bin/python perf/learning/summarize.py "$out" > "$out/summary.md"
