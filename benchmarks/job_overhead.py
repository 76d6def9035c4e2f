"""Per-job overhead of a shard job at paper data sizes, and its share of a paper-scale shard's wall time.

    python benchmarks/job_overhead.py                  # this machine (~10 min): fast net width 16, CIFAR sizes
    python benchmarks/job_overhead.py --width 64 --k 64 --device cuda        # GPU: the paper's net
    python benchmarks/job_overhead.py --smoke          # seconds; what CI runs

Two real `chaosgrid train-shard` jobs on CIFAR-10-sized data (synthetic50k: 50,000 train / 10,000 test, the
same cost per step as CIFAR-10) with the paper's evaluation load (clean + 4 corruptions x 3 severities,
130,000 examples) train K runs for two short lengths, reading the dataset and its shifted sets prepared once
beforehand, as the workflow's jobs do (the one-off preparation is timed and printed apart). Each job prints its phases (imports, inputs,
runs, writing); the interpreter start is the job's outside wall time minus their sum. Per-run seconds are
linear in epochs, r(E) = a + b*E (a: init and evaluation, b: one epoch of training), so the two jobs give a
and b, and with the measured fixed overhead and writing seconds per run the benchmark projects the overhead's
share of a paper shard (--paper-k runs of --paper-epochs epochs) on this device. Results:
results/benchmarks/job_overhead.csv.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import pandas as pd

from chaosgrid import data, evalsets
from chaosgrid.footprint import DATASETS
from chaosgrid.plan.workflow import prepared_options
from chaosgrid.shifts import prepare_inputs

CLI = [sys.executable, "-m", "chaosgrid.cli", "train-shard"]
SHIFTS, SEVERITIES = ["gaussian_noise", "contrast", "pixelate", "jpeg"], [1, 3, 5]


def job(base: dict, k: int, epochs: float, shifts: list[str], device: str, engine: str, folder: Path,
        prepared: dict) -> dict:  # fmt: skip
    """Seconds of each phase of one shard job on the inputs prepared in `folder`, plus 'start-up'
    (interpreter) and 'wall' seen from outside."""
    spec = json.dumps({"base": {**base, "epochs": epochs}, "seeds": list(range(k)), "shifts": shifts,
                       "severities": SEVERITIES if shifts else []})  # fmt: skip
    start = time.perf_counter()
    done = subprocess.run([*CLI, "--spec", spec, "--runs", folder / "r.parquet", "--predictions", folder / "p.parquet",
                           "--device", device, "--engine", engine, *prepared_options(prepared)],
                          capture_output=True, text=True, check=True)  # fmt: skip
    wall = time.perf_counter() - start
    line = next(line for line in done.stdout.splitlines() if line.startswith("phases (s):"))
    phases = {name: float(sec) for name, sec in re.findall(r"([a-z ]+) (\d+\.\d+)", line.split(";")[0][11:])}
    phases = {name.strip(): sec for name, sec in phases.items()}
    return {"start-up": wall - sum(phases.values()), **phases, "wall": wall}


@click.command()
@click.option("--width", default=16, show_default=True, help="Width of the fast net (the paper's: 64).")
@click.option("--k", default=2, show_default=True, help="Runs per measured job.")
@click.option("--steps", default="2,10", show_default=True, help="Training steps per run of the two jobs.")
@click.option("--paper-k", default=400, show_default=True, help="Runs per shard in the paper config.")
@click.option("--paper-epochs", default=10.0, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--engine", default="auto", show_default=True)
@click.option(
    "--smoke", is_flag=True, help="Digits-sized data, no shifts: checks the benchmark runs, in seconds."
)
@click.option("--out", default="results/benchmarks/job_overhead.csv", show_default=True)
def main(width, k, steps, paper_k, paper_epochs, device, engine, smoke, out) -> None:
    base = {"dataset": "synthetic50k", "model": "fast", "width": width, "batch_size": 1024, "lr": 0.2,
            "label_smoothing": 0.2, "augmentation": "flip_crop"}  # fmt: skip
    shifts = SHIFTS
    if smoke:
        base, shifts, k = {**base, "dataset": "digits", "width": 4, "batch_size": 64}, [], 2
    n_train = DATASETS[base["dataset"]][2]
    step_counts = [int(s) for s in steps.split(",")]
    epochs = [s * base["batch_size"] / n_train for s in step_counts]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        pairs = evalsets.eval_pairs(shifts, SEVERITIES if shifts else [])
        prepared = prepare_inputs(data.load(base["dataset"]), pairs, Path(tmp) / "prepared")
        print(
            f"inputs prepared once (dataset and {len(pairs) - 1} shifted sets): {time.perf_counter() - start:.1f} s"
        )
        jobs = [job(base, k, e, shifts, device, engine, Path(tmp), prepared) for e in epochs]
    per_run = [j["runs"] / k for j in jobs]
    per_epoch = (per_run[1] - per_run[0]) / (epochs[1] - epochs[0])
    bound = per_epoch <= 0  # the extra steps cost less than the noise: count runs as init + evaluation only
    per_epoch = max(per_epoch, 0.0)
    fixed_per_run = per_run[0] - per_epoch * epochs[0]
    overheads = [{p: s for p, s in j.items() if p not in ("runs", "wall")} for j in jobs]
    fixed = sum(sum(o.values()) - o["writing"] for o in overheads) / 2
    writing_per_run = sum(o["writing"] for o in overheads) / 2 / k
    print(f"fast width {base['width']} on {base['dataset']}, {k} runs per job, "
          f"{1 + len(shifts) * len(SEVERITIES)} eval sets, device {device}, engine {engine}")  # fmt: skip
    print(f"{'steps':>6} " + " ".join(f"{p:>10}" for p in jobs[0]) + "   (seconds)")
    for s, j in zip(step_counts, jobs, strict=True):
        print(f"{s:>6} " + " ".join(f"{v:>10.2f}" for v in j.values()))
    paper_runs = paper_k * (fixed_per_run + per_epoch * paper_epochs)
    paper_overhead = fixed + writing_per_run * paper_k
    share = paper_overhead / (paper_overhead + paper_runs)
    print(f"per run: {fixed_per_run:.2f} s (init + evaluation) + {per_epoch:.2f} s per epoch; "
          f"fixed overhead {fixed:.2f} s per job + writing {writing_per_run:.3f} s per run")  # fmt: skip
    print(f"projected paper shard ({paper_k} runs x {paper_epochs:g} epochs): runs {paper_runs:,.0f} s, "
          f"overhead {paper_overhead:.1f} s = {'at most ' * bound}{100 * share:.2f}% of the job"
          + (" (the extra training steps were within the noise: runs counted as evaluation only)" * bound))  # fmt: skip
    rows = [{"steps": s, **j} for s, j in zip(step_counts, jobs, strict=True)]
    rows.append(
        {"steps": "projected", "runs": paper_runs, "overhead": paper_overhead, "overhead_share": share}
    )
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out, index=False)


if __name__ == "__main__":
    main()
