#!/usr/bin/env python3
"""Research sweeps of `aegis replay` on Ray.

A spec (TOML) names the inputs (recorded or dumped files, in time order), a grid or a search
space of config overrides, and whether each replay learns. Every combination is checked
first (`aegis replay --check`: the engine's own config loader refuses an unknown key or a
bad value, naming it); then each (combination, input) runs as one Ray task; every report is
gathered into one Parquet file (rows sorted by parameters, then input: the same file
whatever order tasks finish in), a ranked table, a nested walk-forward evaluation (choose
on earlier inputs, report on the next) and plots.

    .venv/bin/python tools/sweep/sweep.py SPEC.toml --out DIR [--address HOST:PORT]

Without --address, Ray starts on this machine (`ray.init()`); with it, the sweep runs on an
existing cluster. The binaries and the inputs reach the workers through Ray's object store
and are cached on each node by content hash. Exit status: 0 when every task ran; 2 when some
combination was refused or some task failed or timed out (all of them are in the outputs,
with their parameters); 1 when the sweep itself could not run.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import os
import random
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
# A report's figures that become Parquet columns, and the direction that is better.
METRICS = {
    "trades": True,
    "win_rate": True,
    "pnl_net": True,
    "fees": False,
    "max_drawdown": False,
    "sharpe_per_trade": True,
    "exposure": True,
}


class SpecError(Exception):
    """The spec cannot be swept (named key, reason)."""


def load_spec(path: Path) -> dict:
    """The spec, with inputs resolved against the spec's folder."""
    try:
        spec = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise SpecError(f"{path}: {e}") from e
    known = {"inputs", "learn", "metric", "random_seeds", "timeout_s", "grid", "search", "fixed", "extra"}
    for key in spec:
        if key not in known:
            raise SpecError(f"{path}: unknown key `{key}` (expected one of {', '.join(sorted(known))})")
    inputs = spec.get("inputs")
    if not inputs or not isinstance(inputs, list):
        raise SpecError(f"{path}: `inputs` must list at least one file, in time order")
    spec["inputs"] = [str((path.parent / p).resolve()) for p in inputs]
    for p in spec["inputs"]:
        if not Path(p).is_file():
            raise SpecError(f"{path}: input {p} does not exist")
    if ("grid" in spec) == ("search" in spec):
        raise SpecError(f"{path}: give exactly one of [grid] and [search]")
    metric = spec.setdefault("metric", "pnl_net")
    if metric not in METRICS:
        raise SpecError(f"{path}: metric `{metric}` is not one of {', '.join(METRICS)}")
    spec.setdefault("learn", False)
    spec.setdefault("random_seeds", 0)
    spec.setdefault("timeout_s", 600)
    spec.setdefault("fixed", {})
    return spec


def combinations(spec: dict) -> list[dict]:
    """Every parameter set: the grid's cartesian product, or `samples` draws from the search
    space with its seed, then the `extra` sets; each with the fixed overrides, duplicates
    once. Sorted, so ids are stable."""
    if "grid" in spec:
        keys = sorted(spec["grid"])
        for k in keys:
            if not isinstance(spec["grid"][k], list) or not spec["grid"][k]:
                raise SpecError(f"grid `{k}`: a non-empty list of values")
        combos = [dict(zip(keys, values)) for values in itertools.product(*(spec["grid"][k] for k in keys))]
    else:
        search = spec["search"]
        rng = random.Random(search.get("seed", 1))
        space = search.get("space", {})
        combos = [{k: draw(k, space[k], rng) for k in sorted(space)} for _ in range(int(search.get("samples", 8)))]
    for extra in spec.get("extra", []):
        if not isinstance(extra, dict):
            raise SpecError("extra: a list of tables of overrides")
        combos.append(extra)
    out = []
    for c in combos:
        c = {**spec["fixed"], **c}
        if c not in out:
            out.append(c)
    return sorted(out, key=sort_key)


def draw(key: str, dist: dict, rng: random.Random):
    """One value of a search-space dimension."""
    if "choice" in dist:
        return rng.choice(dist["choice"])
    if "uniform" in dist:
        lo, hi = dist["uniform"]
        return round(rng.uniform(lo, hi), 6)
    if "log_uniform" in dist:
        lo, hi = dist["log_uniform"]
        return round(math.exp(rng.uniform(math.log(lo), math.log(hi))), 8)
    if "int" in dist:
        lo, hi = dist["int"]
        return rng.randint(lo, hi)
    raise SpecError(f"search `{key}`: one of choice, uniform, log_uniform, int")


def sort_key(params: dict) -> tuple:
    """Orders parameter sets by key, then by value (numbers before text)."""
    return tuple((k, 0 if isinstance(v, (int, float)) else 1, v if isinstance(v, (int, float)) else str(v))
                 for k, v in sorted(params.items()))


def text(value) -> str:
    """A value as `--set` takes it (TOML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def label(params: dict) -> str:
    return ", ".join(f"{k}={text(v)}" for k, v in sorted(params.items())) or "(defaults)"


def replay_args(params: dict, spec: dict, sidecar: str | None) -> list[str]:
    """`aegis replay`'s options for one parameter set."""
    args = ["replay", "--quiet", "--random-seeds", str(spec["random_seeds"])]
    if spec["learn"]:
        args.append("--learn")
    for k, v in sorted(params.items()):
        args += ["--set", f"{k}={text(v)}"]
    if sidecar:
        args += ["--set", f"ml.sidecar={sidecar}"]
    return args


def check(aegis: Path, params: dict, spec: dict, sidecar: str | None, inputs: list[str]) -> str | None:
    """The check-only run: `None` when the engine accepts it, else its error line."""
    run = subprocess.run([str(aegis), *replay_args(params, spec, sidecar), "--check", *inputs],
                         capture_output=True, text=True, env={**os.environ, "RUST_BACKTRACE": "0"})
    if run.returncode == 0:
        return None
    lines = [l for l in run.stderr.splitlines() if l.strip()]
    error = next((l for l in lines if l.startswith("Error:")), lines[0] if lines else f"exit {run.returncode}")
    detail = [l.strip() for l in lines if "unknown field" in l or "invalid" in l or "expected" in l]
    return " ".join([error.removeprefix("Error: ")] + [d for d in detail if d not in error])


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def materialize(blob: dict) -> str:
    """A shipped file on this node: from the cache when its hash is there, else fetched from
    the object store and written once (atomically: tasks on one node share the cache)."""
    cache = Path(tempfile.gettempdir()) / "aegis-sweep-cache" / blob["sha256"]
    path = cache / blob["name"]
    if not path.exists():
        import ray  # noqa: PLC0415 (on the worker)
        cache.mkdir(parents=True, exist_ok=True)
        data = ray.get(blob["ref"][0])
        tmp = cache / f".{blob['name']}.{os.getpid()}"
        tmp.write_bytes(data)
        tmp.chmod(0o755)
        os.replace(tmp, path)
    return str(path)


def torch_library_path() -> str | None:
    """libtorch on this worker for `--learn`: a torch 2.11 importable by the worker's Python."""
    try:
        import torch  # noqa: PLC0415 (only learning tasks need it)
    except ImportError:
        return None
    return str(Path(torch.__file__).parent / "lib")


def run_task(task: dict, blobs: dict) -> dict:
    """One replay on a worker: the binaries and the input from the cache, the report back."""
    started = time.monotonic()
    aegis = materialize(blobs["aegis"])
    sidecar = materialize(blobs["sidecar"]) if "sidecar" in blobs else None
    data = materialize(blobs[task["input"]])
    env = {**os.environ, "RUST_BACKTRACE": "0"}
    if sidecar:
        lib = torch_library_path()
        if lib is None:
            return {"status": "failed", "error": "--learn needs torch 2.11 importable on the worker (see tools/sweep/README.md)"}
        env["LD_LIBRARY_PATH"] = lib + os.pathsep + env.get("LD_LIBRARY_PATH", "")
    with tempfile.TemporaryDirectory(prefix="aegis-sweep-") as out:
        args = [aegis, *replay_args(task["params"], task["spec"], sidecar), data,
                "--summary", f"{out}/report.json", "--plot", f"{out}/equity.svg"]
        try:
            run = subprocess.run(args, capture_output=True, text=True, env=env, timeout=task["spec"]["timeout_s"])
        except subprocess.TimeoutExpired:
            return {"status": "timeout", "error": f"no report within {task['spec']['timeout_s']} s",
                    "wall_s": time.monotonic() - started}
        if run.returncode != 0:
            tail = [l for l in run.stderr.splitlines() if l.strip()][-1:] or [f"exit {run.returncode}"]
            return {"status": "failed", "error": tail[0], "wall_s": time.monotonic() - started}
        return {"status": "ok", "report": Path(f"{out}/report.json").read_text(),
                "plot": Path(f"{out}/equity.svg").read_text(), "wall_s": time.monotonic() - started}


def row_of(params: dict, index: int, input_name: str, result: dict) -> dict:
    """One Parquet row: the parameters, the input, the status and the report's figures."""
    row = {f"param.{k}": v for k, v in params.items()}
    row.update({"combination": label(params), "input_index": index, "input": input_name,
                "status": result["status"], "error": result.get("error")})
    report = json.loads(result["report"]) if result["status"] == "ok" else {}
    for m in METRICS:
        row[m] = report.get(m)
    b = report.get("baselines", {})
    hold, random_entries, alone = b.get("buy_and_hold", {}), b.get("random_entries", {}), b.get("teacher_alone", {})
    row["buy_and_hold.pnl_net"] = hold.get("pnl_net")
    row["random_entries.pnl_net.mean"] = random_entries.get("pnl_net", {}).get("mean")
    row["random_entries.pnl_net.sd"] = random_entries.get("pnl_net", {}).get("sd")
    row["teacher_alone.pnl_net"] = alone.get("pnl_net")
    phases = report.get("phases", [])
    student = [p for p in phases if p.get("phase", "").startswith("student")]
    row["student.trades"] = sum(p["trades"] for p in student) if report else None
    row["student.pnl_net"] = sum(p["pnl_net"] for p in student) if report else None
    trainings = report.get("learning", {}).get("trainings", [])
    row["trainings"] = len(trainings) if report else None
    row["published"] = sum(1 for t in trainings if t.get("published")) if report else None
    row["from_ms"] = phases[0].get("from_ms") if phases else None
    return row


def write_parquet(rows: list[dict], path: Path) -> None:
    """Rows in their sorted order; a parameter column whose values mix types becomes text."""
    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415
    columns = sorted({k for r in rows for k in r if k.startswith("param.")}) + \
        [k for k in rows[0] if not k.startswith("param.")]
    arrays = {}
    for c in columns:
        values = [r.get(c) for r in rows]
        try:
            arrays[c] = pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):
            arrays[c] = pa.array([None if v is None else text(v) for v in values])
    pq.write_table(pa.table(arrays), path)


def rank(rows: list[dict], combos: list[dict], metric: str, inputs: list[int]) -> list[tuple[dict, float]]:
    """Combinations that ran on every one of `inputs`, best first by the mean metric."""
    better = METRICS[metric]
    scored = []
    for c in combos:
        mine = [r for r in rows if r["combination"] == label(c) and r["input_index"] in inputs]
        if len(mine) == len(inputs) and all(r["status"] == "ok" and r[metric] is not None for r in mine):
            scored.append((c, sum(r[metric] for r in mine) / len(mine)))
    return sorted(scored, key=lambda s: (-s[1] if better else s[1], sort_key(s[0])))


def walk_forward(rows: list[dict], combos: list[dict], metric: str, names: list[str]) -> list[dict]:
    """Nested walk-forward: for each later input, the combination ranked best on all the
    inputs before it, and how it did on this one (its rank among every combination there)."""
    folds = []
    for k in range(1, len(names)):
        chosen = rank(rows, combos, metric, list(range(k)))
        if not chosen:
            folds.append({"fold": k, "input": names[k], "chosen": None, "why": "no combination ran on every earlier input"})
            continue
        best, in_sample = chosen[0]
        here = rank(rows, combos, metric, [k])
        position = next((i + 1 for i, (c, _) in enumerate(here) if c == best), None)
        out_of_sample = next((s for c, s in here if c == best), None)
        row = next((r for r in rows if r["combination"] == label(best) and r["input_index"] == k), {})
        scores = sorted(s for _, s in here)
        folds.append({
            "fold": k, "chosen_on": names[:k], "input": names[k], "chosen": label(best),
            "in_sample": in_sample, "out_of_sample": out_of_sample,
            "rank_out_of_sample": position, "combinations": len(here),
            "median_out_of_sample": scores[len(scores) // 2] if scores else None,
            "buy_and_hold.pnl_net": row.get("buy_and_hold.pnl_net"),
            "random_entries.pnl_net.mean": row.get("random_entries.pnl_net.mean"),
        })
    return folds


def fmt(v) -> str:
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.4g}" if abs(v) < 1 else f"{v:.2f}"
    return str(v)


def ranking_table(ranked, rows, metric, names) -> str:
    lines = [f"| rank | combination | mean {metric} | " + " | ".join(names) + " |",
             "|---:|---|---:|" + "---:|" * len(names)]
    for i, (c, score) in enumerate(ranked, 1):
        per = [next((r[metric] for r in rows if r["combination"] == label(c) and r["input_index"] == k), None)
               for k in range(len(names))]
        lines.append(f"| {i} | {label(c)} | {fmt(score)} | " + " | ".join(fmt(v) for v in per) + " |")
    return "\n".join(lines) + "\n"


def plots(out: Path, ranked, rows, folds, metric, names) -> None:
    """ranking.svg (every combination, its mean and each input, the baselines beside) and
    walk_forward.svg (per fold: every combination out of sample, the chosen one marked)."""
    import matplotlib  # noqa: PLC0415
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415
    unit = {"pnl_net": " (USDT, net of fees)", "fees": " (USDT)", "max_drawdown": " (fraction)"}.get(metric, "")

    def baselines(ax, horizontal: bool) -> None:
        for key, colour, style, name in [("buy_and_hold.pnl_net", "#ff7f0e", "--", "buy-and-hold"),
                                         ("random_entries.pnl_net.mean", "#888888", ":", "random entries (mean)")]:
            values = [r[key] for r in rows if r.get(key) is not None]
            if metric == "pnl_net" and values:
                mean = sum(values) / len(values)
                (ax.axvline if horizontal else ax.axhline)(mean, color=colour, linestyle=style, label=f"{name}, mean over inputs")

    fig, ax = plt.subplots(figsize=(10, 1.5 + 0.45 * max(len(ranked), 1)))
    ys = list(range(len(ranked)))[::-1]
    ax.barh(ys, [s for _, s in ranked], color="#1f77b4", alpha=0.6, label=f"mean {metric}")
    for y, (c, _) in zip(ys, ranked):
        per = [r[metric] for r in rows if r["combination"] == label(c) and r["status"] == "ok"]
        ax.plot(per, [y] * len(per), "o", color="#1f77b4", markersize=4)
    ax.set_yticks(ys, [label(c) for c, _ in ranked], fontsize=8)
    ax.axvline(0, color="black", linewidth=0.8)
    baselines(ax, True)
    ax.set_xlabel(metric + unit)
    ax.set_title(f"{len(ranked)} combinations ranked by mean {metric} over {len(names)} input(s); dots: each input")
    ax.grid(axis="x", color="#ddd")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(out / "ranking.svg")
    plt.close(fig)

    if not folds:
        return
    fig, ax = plt.subplots(figsize=(10, 4.5))
    for x, fold in enumerate(folds):
        every = [r[metric] for r in rows if r["input_index"] == fold["fold"] and r["status"] == "ok"]
        ax.plot([x] * len(every), every, "o", color="#bbbbbb", markersize=5, label="every combination" if x == 0 else None)
        if fold.get("out_of_sample") is not None:
            ax.plot(x, fold["out_of_sample"], "*", color="#1f77b4", markersize=14, label="chosen earlier, out of sample" if x == 0 else None)
            ax.plot(x, fold["in_sample"], "o", mfc="none", color="#1f77b4", markersize=9, label="chosen, in sample (earlier inputs)" if x == 0 else None)
        for key, colour, name in [("buy_and_hold.pnl_net", "#ff7f0e", "buy-and-hold on this input"),
                                  ("random_entries.pnl_net.mean", "#888888", "random entries on this input (mean)")]:
            if metric == "pnl_net" and fold.get(key) is not None:
                ax.plot([x - 0.3, x + 0.3], [fold[key]] * 2, color=colour, linestyle="--", label=name if x == 0 else None)
    ax.set_xticks(range(len(folds)), [f"fold {f['fold']}: {Path(f['input']).name}" for f in folds], fontsize=8)
    ax.set_ylabel(metric + unit)
    ax.set_title("nested walk-forward: choose on earlier inputs, report on the next")
    ax.grid(axis="y", color="#ddd")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    fig.savefig(out / "walk_forward.svg")
    plt.close(fig)


def auth_token_available() -> bool:
    """Whether a Ray cluster token is at hand (RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH, ~/.ray/auth_token)."""
    return bool(os.environ.get("RAY_AUTH_TOKEN")) or Path(
        os.environ.get("RAY_AUTH_TOKEN_PATH", Path.home() / ".ray" / "auth_token")).is_file()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec", type=Path, help="the sweep's TOML spec (tools/sweep/README.md)")
    parser.add_argument("--out", type=Path, required=True, help="where the Parquet file, tables, plots and reports go")
    parser.add_argument("--address", help="an existing Ray cluster (HOST:PORT, or `auto`); default: a local Ray")
    parser.add_argument("--aegis", type=Path, default=REPO / "target/release/aegis", help="the aegis binary to ship")
    parser.add_argument("--sidecar", type=Path, help="the aegis-sidecar binary for `learn` (default: beside aegis)")
    parser.add_argument("--cpus", type=int, help="CPUs of the local Ray (default: all)")
    args = parser.parse_args()
    try:
        spec = load_spec(args.spec)
        combos = combinations(spec)
    except SpecError as e:
        print(f"sweep: {e}", file=sys.stderr)
        return 1
    if not args.aegis.is_file():
        print(f"sweep: {args.aegis} not found (cargo build --release -p aegis, or --aegis)", file=sys.stderr)
        return 1
    sidecar = None
    if spec["learn"]:
        sidecar = args.sidecar or args.aegis.with_name("aegis-sidecar")
        if not sidecar.is_file():
            print(f"sweep: learn = true needs {sidecar} (cargo build --release -p aegis-sidecar, or --sidecar)", file=sys.stderr)
            return 1
    args.out.mkdir(parents=True, exist_ok=True)
    names = [Path(p).name for p in spec["inputs"]]

    # 1. Check every combination (and every input) before any task starts.
    started = time.monotonic()
    refused = {}
    for c in combos:
        error = check(args.aegis, c, spec, str(sidecar) if sidecar else None, spec["inputs"][:1])
        if error:
            refused[label(c)] = error
    for p in spec["inputs"][1:]:
        error = check(args.aegis, {}, spec, str(sidecar) if sidecar else None, [p])
        if error:
            print(f"sweep: input refused: {error}", file=sys.stderr)
            return 1
    for c, error in refused.items():
        print(f"sweep: refused before any task: {c}: {error}", file=sys.stderr)
    checked_s = time.monotonic() - started

    # 2. Ray: local by default, or the cluster at --address.
    if args.address and "RAY_AUTH_MODE" not in os.environ and auth_token_available():
        # `ray start` authenticates by token by default since Ray 2.59; a driver joins with it
        # (read when ray is imported).
        os.environ["RAY_AUTH_MODE"] = "token"
    import ray  # noqa: PLC0415
    init = {"address": args.address} if args.address else {"num_cpus": args.cpus}
    ray_from = time.monotonic()
    ray.init(include_dashboard=False, logging_level="WARNING", log_to_driver=False, **init)
    ray_start_s = time.monotonic() - ray_from
    remote = ray.remote(num_cpus=1, max_retries=0)(run_task)

    def ship(path: Path) -> dict:
        # The ref travels inside a list so the task fetches it only on a cache miss.
        return {"name": path.name, "sha256": sha256(path), "ref": [ray.put(path.read_bytes())], "bytes": path.stat().st_size}

    blobs = {"aegis": ship(args.aegis)}
    if sidecar:
        blobs["sidecar"] = ship(sidecar)
    for p in spec["inputs"]:
        blobs[p] = ship(Path(p))
    shipped = sum(b["bytes"] for b in blobs.values())

    # 3. One task per (combination, input) that passed the check.
    tasks = {}
    for c in combos:
        if label(c) in refused:
            continue
        for k, p in enumerate(spec["inputs"]):
            task = {"params": c, "input": p, "spec": spec}
            tasks[remote.remote(task, blobs)] = (c, k)
    results = {}
    pending = list(tasks)
    ran_from = time.monotonic()
    while pending:
        done, pending = ray.wait(pending, num_returns=1)
        c, k = tasks[done[0]]
        try:
            results[(label(c), k)] = ray.get(done[0])
        except Exception as e:  # a worker that died or raised: reported, never dropped
            results[(label(c), k)] = {"status": "failed", "error": f"{type(e).__name__}: {str(e).splitlines()[0]}"}
        r = results[(label(c), k)]
        print(f"sweep: {len(results)}/{len(tasks)} {r['status']}: {label(c)} on {names[k]}", file=sys.stderr)
    ran_s = time.monotonic() - ran_from
    ray.shutdown()

    # 4. Gather: one row per (combination, input), refused ones included.
    rows = []
    for c in combos:
        for k, name in enumerate(names):
            result = {"status": "refused", "error": refused[label(c)]} if label(c) in refused else results[(label(c), k)]
            rows.append(row_of(c, k, name, result))
            if result["status"] == "ok":
                where = args.out / "reports" / f"c{combos.index(c):03d}"
                where.mkdir(parents=True, exist_ok=True)
                (where / f"{Path(name).stem}.json").write_text(result["report"])
                (where / f"{Path(name).stem}.svg").write_text(result["plot"])
    write_parquet(rows, args.out / "results.parquet")
    metric = spec["metric"]
    ranked = rank(rows, combos, metric, list(range(len(names))))
    folds = walk_forward(rows, combos, metric, names)
    table = ranking_table(ranked, rows, metric, names)
    failures = [r for r in rows if r["status"] != "ok"]
    lines = [f"# Sweep: {len(combos)} combinations × {len(names)} input(s), ranked by {metric}", "", table]
    if len(names) == 1:
        lines.append("One input: the ranking is in sample; give several inputs in time order for a walk-forward.\n")
    for f in folds:
        if f["chosen"] is None:
            lines.append(f"- fold {f['fold']} ({f['input']}): {f['why']}")
        else:
            lines.append(f"- fold {f['fold']}: chosen on {', '.join(f['chosen_on'])} → {f['chosen']} "
                         f"({metric} {fmt(f['in_sample'])} in sample); on {f['input']}: {fmt(f['out_of_sample'])}, "
                         f"rank {f['rank_out_of_sample']} of {f['combinations']} (median {fmt(f['median_out_of_sample'])})")
    if failures:
        lines += ["", "## Not run or failed", ""]
        lines += [f"- {r['combination']} on {r['input']}: {r['status']}: {r['error']}" for r in failures]
    (args.out / "ranking.md").write_text("\n".join(lines) + "\n")
    (args.out / "walk_forward.json").write_text(json.dumps(folds, indent=2) + "\n")
    timings = {"check_s": checked_s, "ray_start_s": ray_start_s, "tasks": len(tasks), "tasks_s": ran_s,
               "tasks_per_s": len(tasks) / ran_s if ran_s > 0 else None,
               "shipped_bytes": shipped, "wall_s": {f"{c} on {names[k]}": r.get("wall_s") for (c, k), r in sorted(results.items())}}
    (args.out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    plots(args.out, ranked, rows, folds, metric, names)
    print("\n".join(lines))
    print(f"sweep: {len(tasks)} tasks in {ran_s:.1f} s ({len(rows) - len(failures)} ok, {len(failures)} not); "
          f"{shipped / 1e6:.1f} MB shipped; outputs in {args.out}", file=sys.stderr)
    return 2 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
