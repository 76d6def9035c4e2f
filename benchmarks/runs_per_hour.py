"""Runs per hour of the pipeline's shard job vs the ways a researcher might otherwise run the same runs.

    python benchmarks/runs_per_hour.py                 # CPU-sized: cnn width 8 on digits, 2 epochs
    python benchmarks/runs_per_hour.py --model fast --dataset synthetic50k --width 64 --epochs 10 \\
        --ks 1,4,16,64 --naive-max 2                   # GPU, real sizes
    python benchmarks/runs_per_hour.py --ks '' --points 12   # only: 12 grid points x 8 seeds, one job vs 12
    python benchmarks/runs_per_hour.py --smoke         # seconds; what CI runs

For each K (runs in one shard), side by side in this one invocation:
- shard job: one `chaosgrid train-shard` process for the K runs, reading the dataset and its shifted sets
  prepared once beforehand (what the workflow runs: rules prepare_dataset, prepare_eval_set; engine auto);
- shard job, own inputs: the same process making its dataset and shifted sets itself (as before prepared
  inputs existed);
- in-process loop / vmap: the same K runs through chaosgrid.train in this process (no start-up cost);
- process per run: one `chaosgrid train-shard` process per run (the naive pipeline), timed on
  min(K, --naive-max) runs and scaled, since every such process costs the same.
The shard job's overhead (interpreter, imports, data, shifted sets, writing) is its wall time minus its
runs' own training+evaluation time, shown as a fraction of the job.

With `--points P`: P grid points that differ only in lr, `--point-seeds` seeds each, trained as one stack in one
shard job (how planning packs them: chaosgrid.optimizers holds lr per run) against P shard jobs of one point
each (how they ran before). Results: results/benchmarks/runs_per_hour.csv (the points case: its rows' `case`).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import pandas as pd
import torch

from chaosgrid import data, engine, evalsets, shifts, train
from chaosgrid.cells import validate_cell
from chaosgrid.plan.workflow import prepared_options

CLI = [sys.executable, "-m", "chaosgrid.cli", "train-shard"]
SHIFTS, SEVERITIES = ["gaussian_noise", "contrast", "pixelate", "jpeg"], [1, 3, 5]


def shard_job(
    base: dict, seeds: list[int], threads: int, folder: Path, prepared: dict | None, points: list[dict] = ()
) -> tuple[float, float]:
    """(wall seconds, seconds inside runs) of one `chaosgrid train-shard` process (of several grid points'
    runs with `points`)."""
    spec = {"base": base, "seeds": seeds, "shifts": SHIFTS, "severities": SEVERITIES, "points": list(points)}
    spec = json.dumps({k: v for k, v in spec.items() if v})
    runs = folder / f"runs-{seeds[0]}-{len(seeds)}.parquet"
    extra = prepared_options(prepared) if prepared else []
    start = time.perf_counter()
    subprocess.run([*CLI, "--spec", spec, "--runs", runs, "--predictions", folder / "p.parquet",
                    "--threads", str(threads), *extra], check=True, capture_output=True)  # fmt: skip
    wall = time.perf_counter() - start
    return wall, float(pd.read_parquet(runs, columns=["wall_s"])["wall_s"].sum())


def in_process(engine_name: str, base: dict, seeds: list[int], dataset, sets) -> float:
    cells = [validate_cell({**base, "init_seed": s, "order_seed": s, "aug_seed": s}) for s in seeds]
    start = time.perf_counter()
    train.train_shard(cells, dataset, sets, engine.Execution(engine_name))
    if dataset.x_train.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def grid_points(
    base: dict, points: int, seeds: int, threads: int, folder: Path, prepared: dict, device: str
) -> dict:
    """`points` grid points of `seeds` runs, lr 0.05-0.1: one shard job for all (one stack) vs one job each."""
    lrs = [round(0.05 * (1 + i / points), 6) for i in range(points)]
    together, _ = shard_job(base, list(range(seeds)), threads, folder, prepared, [{"lr": lr} for lr in lrs])
    apart = sum(shard_job({**base, "lr": lr}, list(range(seeds)), threads, folder, prepared)[0] for lr in lrs)
    runs = points * seeds
    print(f"{points} grid points x {seeds} seeds: one job {3600 * runs / together:.0f} runs/hour ({together:.1f} s), "
          f"{points} jobs {3600 * runs / apart:.0f} ({apart:.1f} s): {apart / together:.2f}x")  # fmt: skip
    return {"case": f"{points} points x {seeds} seeds", "k": runs, "device": device,
            "points_one_job_runs_per_hour": 3600 * runs / together,
            "points_separate_jobs_runs_per_hour": 3600 * runs / apart}  # fmt: skip


@click.command()
@click.option("--model", default="cnn", show_default=True)
@click.option("--dataset", "dataset_name", default="digits", show_default=True)
@click.option("--width", default=8, show_default=True)
@click.option("--epochs", default=2.0, show_default=True)
@click.option("--batch-size", default=64, show_default=True)
@click.option("--ks", default="1,4,16,64", show_default=True)
@click.option(
    "--naive-max", default=4, show_default=True, help="Process-per-run timed on at most this many runs."
)
@click.option("--threads", default=1, show_default=True)
@click.option(
    "--points",
    default=12,
    show_default=True,
    help="Grid points (lr values) in one job vs one job each; 0: none.",
)
@click.option("--point-seeds", default=8, show_default=True, help="Seeds of each of those grid points.")
@click.option("--smoke", is_flag=True, help="Tiny sizes: checks the benchmark runs, in seconds.")
@click.option("--out", default="results/benchmarks/runs_per_hour.csv", show_default=True)
def main(
    model, dataset_name, width, epochs, batch_size, ks, naive_max, threads, points, point_seeds, smoke, out
) -> None:
    if smoke:
        width, epochs, ks, naive_max, points, point_seeds = 4, 0.2, "2", 1, 2, 2
    torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    base = {"dataset": dataset_name, "model": model, "width": width, "epochs": epochs, "batch_size": batch_size,
            "augmentation": "flip_crop"}  # fmt: skip
    dataset = data.load(dataset_name).to(device)
    sets = shifts.eval_sets(dataset, evalsets.eval_pairs(SHIFTS, SEVERITIES))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({threads} threads)"
    print(f"{model} width {width} on {dataset_name}, {epochs} epochs, {len(sets)} eval sets, {name}")
    header = ("K", "shard job", "own inputs", "in-proc loop", "in-proc vmap", "proc per run", "job/naive", "overhead",
              "own: overhead")  # fmt: skip
    print("{:>4} {:>11} {:>11} {:>13} {:>13} {:>13} {:>10} {:>9} {:>14}".format(*header) + "   (runs/hour)")
    for engine_name in ("loop", "vmap"):  # warm-up: lazy initialisation would otherwise land on the first K
        in_process(engine_name, {**base, "epochs": 0.05}, [0, 1], dataset, sets)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        pairs = evalsets.eval_pairs(SHIFTS, SEVERITIES)
        prepared = shifts.prepare_inputs(dataset.to("cpu"), pairs, Path(tmp) / "prepared")
        print(f"inputs prepared once: {time.perf_counter() - start:.1f} s")
        for k in (int(v) for v in ks.split(",") if v):
            seeds = list(range(k))
            job_wall, job_runs = shard_job(base, seeds, threads, Path(tmp), prepared)
            own_wall, own_runs = shard_job(base, seeds, threads, Path(tmp), None)
            loop = in_process("loop", base, seeds, dataset, sets)
            vmapped = in_process("vmap", base, seeds, dataset, sets)
            naive_runs = seeds[:naive_max]
            naive = (
                sum(shard_job(base, [s], threads, Path(tmp), None)[0] for s in naive_runs)
                / len(naive_runs)
                * k
            )
            per_hour = {name: 3600 * k / t for name, t in
                        (("shard_job", job_wall), ("own_inputs", own_wall), ("loop", loop), ("vmap", vmapped),
                         ("process_per_run", naive))}  # fmt: skip
            overhead, own_overhead = (job_wall - job_runs) / job_wall, (own_wall - own_runs) / own_wall
            rows.append({"k": k, **{f"{n}_runs_per_hour": v for n, v in per_hour.items()}, "device": name,
                         "shard_job_s": job_wall, "shard_overhead_s": job_wall - job_runs,
                         "overhead_fraction": overhead, "own_inputs_overhead_fraction": own_overhead})  # fmt: skip
            print(f"{k:>4} {per_hour['shard_job']:>11.0f} {per_hour['own_inputs']:>11.0f} {per_hour['loop']:>13.0f} "
                  f"{per_hour['vmap']:>13.0f} {per_hour['process_per_run']:>13.0f} "
                  f"{per_hour['shard_job'] / per_hour['process_per_run']:>9.1f}x {100 * overhead:>8.1f}% "
                  f"{100 * own_overhead:>13.1f}%")  # fmt: skip
        if points:
            rows.append(grid_points(base, points, point_seeds, threads, Path(tmp), prepared, name))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out, index=False)


if __name__ == "__main__":
    main()
