#!/usr/bin/env bash
# Memory soak (issue 9): `aegis run` (default config: 20 symbols, five streams each, paper
# trading, journals) against a separate exchange-sim injecting every stream and connection
# fault at once, for SECONDS (default 600). RSS is sampled every 5 s, split into anonymous
# memory (heap, stacks: what a leak grows) and file-backed pages (the mmap'd experience
# rings, which become resident as they fill, up to their fixed file size). The run stops by
# itself. Verdict: anonymous RSS must stay flat once warm — the peak of the last fifth no
# more than 5 % (or 1 MiB) above the peak of the second fifth; file-backed RSS must stay
# within the rings' size. Samples, both summaries and the verdict land in
# target/soak/; the last result is recorded in RELIABILITY.md.
#   bash scripts/soak.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
out=target/soak
rm -rf "$out" && mkdir -p "$out"
cargo build --release --locked -q -p aegis -p exchange-sim

faults=(drop-prob=0.00002 stall=20000/300ms fragment=3/11 oversize-after=400000 malformed-every=5003
  duplicate-every=701 reorder-every=1009 depth-gap-every=20000 missing-kline-every=50)
fault_args=()
for f in "${faults[@]}"; do fault_args+=(--fault "$f"); done
target/release/exchange-sim --synthetic --symbols 20 --speed 60 --history-bars 1000 \
  --for "$((seconds + 60))s" --summary "$out/sim-summary.json" "${fault_args[@]}" \
  > "$out/sim.out" 2> "$out/sim.err" &
sim=$!
trap 'kill $sim 2>/dev/null || true; kill $aegis 2>/dev/null || true' EXIT
for _ in $(seq 100); do grep -q '^listening' "$out/sim.out" 2>/dev/null && break; sleep 0.1; done
url=$(awk '/^listening/ {print $2}' "$out/sim.out")
[ -n "$url" ] || { echo "soak: exchange-sim did not start" >&2; cat "$out/sim.err" >&2; exit 1; }

target/release/aegis run --quiet --for "${seconds}s" --connect "$url" --data-dir "$out/data" \
  --summary "$out/summary.json" --metrics-addr 127.0.0.1:0 --control-socket "$out/aegis.sock" \
  2> "$out/aegis.err" &
aegis=$!
echo "seconds,rss_kib,anon_kib,file_kib" > "$out/rss.csv"
start=$(date +%s)
while kill -0 "$aegis" 2>/dev/null; do
  row=$(awk '/^VmRSS:/ {t=$2} /^RssAnon:/ {a=$2} /^RssFile:/ {f=$2} /^RssShmem:/ {s=$2}
    END {if (t) print t "," a "," f + s}' "/proc/$aegis/status" 2>/dev/null || true)
  [ -n "$row" ] && echo "$(( $(date +%s) - start )),$row" >> "$out/rss.csv"
  sleep 5
done
wait "$aegis" || { echo "soak: aegis exited with an error" >&2; tail -20 "$out/aegis.err" >&2; exit 1; }

python3 - "$out" <<'EOF'
import csv, json, sys
out = sys.argv[1]
import os
rows = [r for r in csv.DictReader(open(f"{out}/rss.csv"))][:-1]  # the last: the process exiting
n = len(rows)
assert n >= 10, f"only {n} RSS samples"
fifth = n // 5
col = lambda k, part: [int(r[k]) for r in part]
warm = max(col("anon_kib", rows[fifth:2 * fifth]))
last = max(col("anon_kib", rows[-fifth:]))
growth = (last - warm) / warm
rings_kib = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(f"{out}/data/experience") for f in fs) // 1024
file_max = max(col("file_kib", rows))
s = json.load(open(f"{out}/summary.json"))
verdict = {
    "seconds": int(rows[-1]["seconds"]), "samples": n, "anon_warm_peak_kib": warm, "anon_last_peak_kib": last,
    "anon_growth": round(growth, 4), "rss_max_kib": max(col("rss_kib", rows)),
    "file_backed_max_kib": file_max, "rings_size_kib": rings_kib,
    "events_total": s["events_total"], "reconnects": s["reconnects"], "parse_errors": s["parse_errors"],
    "gaps_detected": s["gaps_detected"], "gaps_filled": s["gaps_filled"],
    "duplicates_dropped": s["duplicates_dropped"], "bars_closed": s["bars_closed"],
    "trades_closed": s.get("trades_closed"),
    "trade_ids": {k: s.get(k) for k in ("trade_id_gaps", "trade_ids_recovered", "agg_ids_skipped",
                  "agg_ids_recovered", "agg_ids_unrecovered", "agg_ids_missing")},
    "flat": (last <= warm * 1.05 or last - warm <= 1024) and file_max <= rings_kib + 16 * 1024,
}
json.dump(verdict, open(f"{out}/verdict.json", "w"), indent=1)
print(json.dumps(verdict, indent=1))
sys.exit(0 if verdict["flat"] else 1)
EOF
