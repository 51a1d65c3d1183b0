#!/usr/bin/env python3
"""Compare criterion results with a saved baseline and flag regressions.

Usage (after `cargo bench -p aegis-perf`):
  python3 perf/compare.py                 # compare target/criterion with perf/baselines/criterion.json
  python3 perf/compare.py --save          # save the current results as the baseline
  python3 perf/compare.py --threshold 15  # flag only slow-downs above 15 %

Exit status 1 when a benchmark is slower than its baseline by more than the threshold and
its confidence interval does not overlap the baseline's. Not part of the test suite: these
machines are shared and noisy, so a flagged result is a reason to re-run, then look.
"""

import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent


def current_results(criterion_dir):
    """{benchmark id: (mean ns, lower ns, upper ns)} from criterion's `new` estimates."""
    results = {}
    for estimates in criterion_dir.glob("**/new/estimates.json"):
        bench_file = estimates.parent / "benchmark.json"
        try:
            bench_id = json.loads(bench_file.read_text())["full_id"]
            mean = json.loads(estimates.read_text())["mean"]
        except (OSError, KeyError, ValueError) as e:
            print(f"skipping {estimates}: {e}", file=sys.stderr)
            continue
        interval = mean["confidence_interval"]
        results[bench_id] = (mean["point_estimate"], interval["lower_bound"], interval["upper_bound"])
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--criterion", default=str(ROOT / "target" / "criterion"))
    parser.add_argument("--baseline", default=str(ROOT / "perf" / "baselines" / "criterion.json"))
    parser.add_argument("--threshold", type=float, default=10.0, help="percent slower that counts")
    parser.add_argument("--save", action="store_true", help="write the current results as the baseline")
    args = parser.parse_args()

    results = current_results(pathlib.Path(args.criterion))
    if not results:
        sys.exit(f"no criterion results under {args.criterion}: run `cargo bench -p aegis-perf` first")
    baseline_path = pathlib.Path(args.baseline)
    if args.save:
        baseline_path.parent.mkdir(parents=True, exist_ok=True)
        saved = {k: {"mean_ns": m, "lower_ns": lo, "upper_ns": hi} for k, (m, lo, hi) in sorted(results.items())}
        baseline_path.write_text(json.dumps(saved, indent=2) + "\n")
        print(f"saved {len(saved)} benchmarks to {baseline_path}")
        return 0
    baseline = json.loads(baseline_path.read_text())
    regressions = 0
    print(f"{'benchmark':70} {'baseline':>12} {'now':>12} {'change':>8}")
    for bench_id, (mean, lower, upper) in sorted(results.items()):
        saved = baseline.get(bench_id)
        if saved is None:
            print(f"{bench_id:70} {'(new)':>12} {mean:12.1f}")
            continue
        change = (mean - saved["mean_ns"]) / saved["mean_ns"] * 100.0
        slower = change > args.threshold and lower > saved["upper_ns"]
        faster = change < -args.threshold and upper < saved["lower_ns"]
        flag = "  REGRESSION" if slower else ("  faster" if faster else "")
        regressions += slower
        print(f"{bench_id:70} {saved['mean_ns']:12.1f} {mean:12.1f} {change:+7.1f}%{flag}")
    for bench_id in sorted(set(baseline) - set(results)):
        print(f"{bench_id:70} {baseline[bench_id]['mean_ns']:12.1f} {'(not run)':>12}")
    if regressions:
        print(f"\n{regressions} regression(s) above {args.threshold:.0f} %", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
