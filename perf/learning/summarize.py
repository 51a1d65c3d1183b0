#!/usr/bin/env python3
"""Tables for perf/LEARNING.md from perf/learning/evaluate.sh's outputs (default
target/evaluation): per market, the student against the teacher, buy-and-hold and random
entries; per phase; the learn sweep's walk-forward; the shared recordings; throughput."""

import json
import sys
from pathlib import Path

out = Path(sys.argv[1] if len(sys.argv) > 1 else "target/evaluation")


def money(v):
    return "–" if v is None else f"{v:+,.0f}"


def read(path):
    return json.loads(path.read_text())


print("### Student against the baselines, per market (PnL net of fees, USDT, from 10,000)\n")
print("| market | run (teacher → student) | trades | win rate | max DD | teacher alone | buy-and-hold | random entries, mean ± sd (min … max), 5 seeds | trainings (published) |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
# Each market's --learn report, read once: (seed, report).
learned = [(path.parent.name, read(path)) for path in sorted(out.glob("learn/*/report.json"))]

for seed, r in learned:
    b = r["baselines"]
    rnd = b["random_entries"]["pnl_net"]
    t = r.get("learning", {}).get("trainings", [])
    alone = b.get("teacher_alone", {})
    print(f"| seed {seed} | {money(r['pnl_net'])} | {r['trades']} | {r['win_rate']:.1%} | {r['max_drawdown']:.1%} "
          f"| {money(alone.get('pnl_net'))} ({alone.get('trades')} trades) | {money(b['buy_and_hold'].get('pnl_net'))} "
          f"| {money(rnd['mean'])} ± {rnd['sd']:,.0f} ({money(rnd['min'])} … {money(rnd['max'])}) "
          f"| {len(t)} ({sum(1 for x in t if x.get('published'))}) |")

print("\n### Per phase\n")
print("| market | phase | trades | win rate | PnL net | max DD | Sharpe/trade |")
print("|---|---|---:|---:|---:|---:|---:|")
for seed, r in learned:
    teacher = [p for p in r["phases"] if p["phase"] == "teacher"]
    student = [p for p in r["phases"] if p["phase"] != "teacher"]
    for p in teacher:
        print(f"| seed {seed} | teacher | {p['trades']} | {p['win_rate']:.1%} | {money(p['pnl_net'])} | {p['max_drawdown']:.1%} | {p['sharpe_per_trade']:.2f} |")
    if student:
        n = sum(p["trades"] for p in student)
        wins = sum(p["wins"] for p in student)
        pnl = sum(p["pnl_net"] for p in student)
        gens = f"{student[0]['phase'].split()[-1]}–{student[-1]['phase'].split()[-1]}"
        print(f"| seed {seed} | student, generations {gens} ({len(student)} phases) | {n} | {wins / max(n, 1):.1%} | {money(pnl)} | – | – |")

sweep = out / "learn-sweep"
if (sweep / "ranking.md").exists():
    print("\n### The learn sweep (local Ray)\n")
    print((sweep / "ranking.md").read_text())
    timings = read(sweep / "timings.json")
    print(f"{timings['tasks']} tasks in {timings['tasks_s']:.0f} s ({timings['tasks_per_s']:.3f} tasks/s); "
          f"sum of task wall times {sum(v for v in timings['wall_s'].values() if v):.0f} s; "
          f"{timings['shipped_bytes'] / 1e6:.0f} MB shipped\n")

print("\n### The shared recordings, teacher only\n")
print("| file | messages | bars closed | trades | PnL net | verdict |")
print("|---|---:|---:|---:|---:|---|")
for path in sorted(out.glob("shared/*.json")):
    r = read(path)
    print(f"| {path.stem} | {r['messages']:,} | {r['bars_closed']:,} | {r['trades']} | {money(r['pnl_net'])} | {r['length']['verdict']} |")
for path in sorted(out.glob("shared/*.err")):
    text = path.read_text().strip()
    if text:
        print(f"| {path.stem} | refused: {text.splitlines()[0]} | | | | |")

tp = out / "throughput"
if (tp / "sequential.json").exists():
    seq = read(tp / "sequential.json")
    swept = read(tp / "sweep" / "timings.json")
    print("\n### Throughput\n")
    print(f"- 8 short replays one after another: {seq['sequential_ms'] / 1000:.1f} s "
          f"({8 / (seq['sequential_ms'] / 1000):.2f} tasks/s)")
    print(f"- the same 8 on a local Ray: {swept['tasks_s']:.1f} s ({swept['tasks_per_s']:.2f} tasks/s), "
          f"plus {swept['check_s']:.1f} s of checks")
    print(f"- one replay, single-threaded: {(tp / 'replay-one.txt').read_text().strip()}")
