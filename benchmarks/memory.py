"""How close planning's memory estimate (`chaosgrid.footprint.memory_mb`) comes to a shard job's peak memory:
each case runs `chaosgrid train-shard` in its own process and reads its peak resident set (os.wait4).

    python benchmarks/memory.py            # six CPU cases, from the default cnn to wide and 32x32 models
    python benchmarks/memory.py --smoke    # seconds; what CI runs

The estimate is meant to be an upper bound of the right size: planning warns when it exceeds a study's
mem_mb. Results: results/benchmarks/memory.csv.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import click
import pandas as pd

from chaosgrid.cells import validate_cell
from chaosgrid.footprint import memory_mb

CHAOSGRID = [sys.executable, "-m", "chaosgrid.cli"]
# (base parameters, runs): the default grid's cnn, wide ones under vmap, 32x32 images on the loop engine.
CASES = [
    ({"model": "cnn", "width": 16, "epochs": 0.3}, 8),
    ({"model": "cnn", "width": 256, "epochs": 0.05}, 8),
    ({"model": "mlp", "width": 256, "epochs": 0.3}, 8),
    ({"model": "cnn", "width": 64, "dataset": "synthetic", "epochs": 0.05}, 2),
    ({"model": "resnet18", "width": 16, "dataset": "synthetic", "epochs": 0.02}, 2),
    ({"model": "fast", "width": 64, "dataset": "synthetic", "batch_size": 512, "epochs": 0.2}, 2),
]


def peak_mb(base: dict, runs: int, folder: Path) -> float:
    """The peak resident memory (MB) of one `chaosgrid train-shard` process training this shard."""
    spec = json.dumps({"base": base, "seeds": list(range(runs))})
    out = {kind: str(folder / f"{kind}.parquet") for kind in ("runs", "predictions")}
    process = subprocess.Popen([*CHAOSGRID, "train-shard", "--spec", spec, "--runs", out["runs"], "--predictions",
                                out["predictions"], "--device", "cpu"], stdout=subprocess.DEVNULL)  # fmt: skip
    _, status, usage = os.wait4(process.pid, 0)
    if status:
        raise RuntimeError(f"train-shard failed on {spec}")
    return usage.ru_maxrss / 1024  # KiB on Linux


@click.command()
@click.option("--smoke", is_flag=True, help="One tiny case: checks the benchmark runs, in seconds.")
@click.option("--out", default="results/benchmarks/memory.csv", show_default=True)
def main(smoke, out) -> None:
    cases = [({"model": "cnn", "width": 4, "epochs": 0.05}, 2)] if smoke else CASES
    rows = []
    print(f"{'case':<44} {'runs':>4} {'estimate MB':>12} {'measured MB':>12} {'estimate/measured':>18}")
    with tempfile.TemporaryDirectory() as tmp:
        for base, runs in cases:
            cell = validate_cell(base)
            found = memory_mb(cell, runs)
            measured = peak_mb(base, runs, Path(tmp))
            name = f"{cell['model']} w{cell['width']} {cell['dataset']} batch {cell['batch_size']}"
            print(
                f"{name:<44} {runs:>4} {found['mb']:>12,.0f} {measured:>12,.0f} {found['mb'] / measured:>18.2f}"
            )
            rows.append({"case": name, "runs": runs, "measured_mb": measured, **found})
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out, index=False)


if __name__ == "__main__":
    main()
