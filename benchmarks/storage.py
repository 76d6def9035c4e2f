"""Bytes on disk per run, and the cost of aggregating a 60,000-run study, on generated shard files.

    python benchmarks/storage.py               # paper sizes: 10,000-example test sets, 60,000 runs
    python benchmarks/storage.py --smoke       # seconds; what CI runs

No training: shard files are generated with the real schemas and writers (chaosgrid.store) from a
realistic model of predictions (per-example difficulty, run-to-run noise, confident correct answers),
so compression sees data like the real thing. Two measurements:
1. storage: one shard of --shard-size runs evaluated on the calibrated_chaos evaluation sets
   (clean, CIFAR-10.1, 4 CIFAR-10-C corruptions x 3 severities); bytes per run per eval set and per run;
2. aggregation: --runs runs in shards of --shard-size (clean set only), aggregated by
   chaosgrid.aggregate.aggregate in a fresh process; wall time and peak memory (RSS).
Results: results/benchmarks/storage.csv.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
import pandas as pd

from chaosgrid import store
from chaosgrid.cells import validate_cell
from chaosgrid.engine import Execution
from chaosgrid.evaluation import EvalResult, RunResult

EVAL_SETS = [("clean", 0, 10_000), ("cifar10_1", 0, 2_000)] + [
    (f"cifar10c_{c}", s, 10_000) for c in ("gaussian_noise", "contrast", "fog", "pixelate") for s in (1, 3, 5)
]
AGGREGATE = """
import resource, sys, time
from chaosgrid.aggregate import aggregate
folder = sys.argv[1]
from pathlib import Path
runs = sorted(Path(folder, "runs").glob("*.parquet"))
preds = sorted(Path(folder, "predictions").glob("*.parquet"))
history = sorted(Path(folder, "history").glob("*.parquet"))
start = time.perf_counter()
aggregate(runs, preds, history, ["lr"], {t: Path(folder, f"t/{t}.parquet") for t in ("runs", "evals", "summary", "history")})
print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def fake_shard(first_seed: int, k: int, eval_sets, rng) -> list[RunResult]:
    """K runs' results: per-example difficulty shared by all runs, per-run noise, float16 probabilities."""
    results = []
    difficulty = {name: rng.beta(5, 1, n) for name, _, n in eval_sets}  # most examples easy, a tail hard
    labels = {name: rng.integers(0, 10, n) for name, _, n in eval_sets}
    for seed in range(first_seed, first_seed + k):
        cell = validate_cell({"dataset": "cifar10", "model": "fast", "width": 64, "lr": 0.1, "init_seed": seed,
                              "order_seed": seed, "aug_seed": seed})  # fmt: skip
        evals = {}
        for name, severity, n in eval_sets:
            correct = rng.random(n) < difficulty[name]
            pred = np.where(correct, labels[name], (labels[name] + rng.integers(1, 10, n)) % 10).astype(
                np.uint8
            )
            p_true = np.where(correct, rng.beta(20, 1, n), rng.beta(1, 4, n)).astype(np.float16)
            evals[name, severity] = EvalResult(pred, p_true, correct, float(correct.mean()))
        results.append(RunResult(cell, 0.1, 0.99, -1, 3.0, evals))
    return results


@click.command()
@click.option("--runs", "n_runs", default=60_000, show_default=True, help="Runs in the aggregation study.")
@click.option("--shard-size", default=200, show_default=True)
@click.option("--smoke", is_flag=True)
@click.option("--out", default="results/benchmarks/storage.csv", show_default=True)
def main(n_runs, shard_size, smoke, out) -> None:
    rng = np.random.default_rng(0)
    eval_sets = EVAL_SETS
    if smoke:
        n_runs, shard_size, eval_sets = 40, 10, [(n, s, 500) for n, s, _ in EVAL_SETS[:3]]
    prov = store.provenance("cpu", 1, Execution("loop").provenance())
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        results = fake_shard(0, shard_size, eval_sets, rng)
        store.write_table(store.predictions_table(results), folder / "one/predictions.parquet")
        store.write_table(store.runs_table(results, "k", prov), folder / "one/runs.parquet")
        pred_bytes = (folder / "one/predictions.parquet").stat().st_size
        runs_bytes = (folder / "one/runs.parquet").stat().st_size
        examples = sum(n for _, _, n in eval_sets)
        per_run = (pred_bytes + runs_bytes) / shard_size
        print(f"storage: {shard_size} runs x {len(eval_sets)} eval sets ({examples} examples per run)")
        print(f"  predictions {pred_bytes / shard_size / len(eval_sets):,.0f} B per run per eval set "
              f"({pred_bytes / shard_size / examples:.2f} B per example); runs table {runs_bytes / shard_size:,.0f} B per run")  # fmt: skip
        print(f"  {per_run / 1e6:.2f} MB per run -> {per_run * 60_000 / 1e9:.1f} GB for 60,000 runs")
        rows.append({"measure": "bytes_per_run", "value": per_run})
        rows.append({"measure": "bytes_per_example", "value": pred_bytes / shard_size / examples})

        clean = [e for e in eval_sets if e[0] == "clean"]
        start = time.perf_counter()
        for first in range(0, n_runs, shard_size):
            shard = fake_shard(first, shard_size, clean, rng)
            store.write_table(store.predictions_table(shard), folder / f"study/predictions/s{first}.parquet")
            store.write_table(
                store.runs_table(shard, f"s{first}", prov), folder / f"study/runs/s{first}.parquet"
            )
            store.write_table(store.history_table(shard), folder / f"study/history/s{first}.parquet")
        generated = time.perf_counter() - start
        disk = sum(f.stat().st_size for f in (folder / "study").rglob("*.parquet"))
        done = subprocess.run([sys.executable, "-c", AGGREGATE, folder / "study"], capture_output=True, text=True,
                              check=True)  # fmt: skip
        seconds, peak_kb = done.stdout.split()
        print(f"aggregation: {n_runs} runs in {n_runs // shard_size} shard files ({disk / 1e9:.2f} GB, "
              f"generated in {generated:.0f} s)")  # fmt: skip
        print(f"  aggregate: {float(seconds):.1f} s, peak memory {int(peak_kb) / 1024:.0f} MB")
        rows += [{"measure": "aggregate_seconds", "value": float(seconds)},
                 {"measure": "aggregate_peak_mb", "value": int(peak_kb) / 1024}]  # fmt: skip
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out, index=False)


if __name__ == "__main__":
    main()
