"""Planning cost: seconds and peak memory of `snakemake -n` for grids of 6,000 / 60,000 / 600,000 runs, and
what one job's own Snakemake costs (on a cluster, every job reads the Snakefile again).

    python benchmarks/dag_scaling.py            # the three grid sizes, shards of 100 runs
    python benchmarks/dag_scaling.py --grid sensitivity --sizes 100000,1000000
                                                # 10 (100) lr x 100 weight_decay x 100 seeds, default settings
    python benchmarks/dag_scaling.py --smoke    # one tiny grid, seconds; what CI runs

Each size is planned from scratch (no outputs), with half of the shard files present, and with every
output present (nothing to do). The `paper` grids are the shape of the paper configs: a few axes and many
seeds, packed into shards of --shard-size runs; the `sensitivity` grids are a user's: lr x weight decay x 100
seeds with every other setting (shard sizes included: by compute) at its default. A job's own Snakemake is
measured as SLURM's executor starts it (`--mode remote --target-jobs` one shard job, dry). Output files are
empty placeholders: a dry-run only looks at their presence and times. Results also go to
results/benchmarks/dag_scaling.csv.
"""

from __future__ import annotations

import copy
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import pandas as pd
import yaml
from snakemake.utils import validate

from chaosgrid.evalsets import eval_pairs
from chaosgrid.plan.analyses import ANALYSES, REPORT_PAGES, STUDY_TABLES
from chaosgrid.plan.paths import prepared_folder, prepared_inputs
from chaosgrid.plan.specs import SHARD_FILES, Shard
from chaosgrid.plan.workflow import Plan

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
MEASURE = """
import resource, subprocess, sys, time
start = time.perf_counter()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.perf_counter() - start
if done.returncode:
    sys.exit(done.stdout[-2000:] + done.stderr[-2000:])
print(seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "Nothing to be done" in done.stdout)
"""


def grid_config(runs: int, shard_size: int, grid: str) -> dict:
    """A study of `runs` runs. paper: 4 lr x 3 augmentations x 5 widths grid points, seeds filling the rest;
    sensitivity: runs / 10,000 lr x 100 weight decays x 100 seeds, the rest at its default."""
    if grid == "sensitivity":
        lrs = [round(0.001 * (1 + i), 6) for i in range(max(1, runs // 10_000))]
        decays = [round(1e-5 * (1 + i), 8) for i in range(100)]
        return {"studies": {"scale": {"lr": lrs, "weight_decay": decays, "seeds": 100}}}
    points = 4 * 3 * 5
    seeds = runs // points
    study = {"dataset": "cifar10", "model": "fast", "lr": [0.05, 0.1, 0.2, 0.4],
             "augmentation": ["none", "flip", "flip_crop"], "width": [16, 32, 64, 128, 256],
             "seeds": seeds, "shard_size": shard_size, "shifts": ["cifar10_1", "jpeg"], "severities": [1, 3, 5]}  # fmt: skip
    return {"studies": {"scale": study}}


def shards_of(config: dict) -> list[Shard]:
    """The study's shards as the workflow plans them (schema defaults, shard sizes by compute)."""
    filled = copy.deepcopy(config)
    validate(filled, str(REPO / "workflow/schemas/config.schema.yaml"), set_default=True)
    return list(Plan.of(filled, results="/nonexistent").shards.values())


def shard_outputs(work: Path, shards: list[Shard]) -> list[Path]:
    return [work / f"results/scale/{kind}/{s.key}.parquet" for s in shards for kind in SHARD_FILES]


def touch(paths: list[Path]) -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


def plan(work: Path, config_path: Path, *job: str) -> tuple[float, float, bool]:
    """(seconds, peak MB, nothing-to-do) of one `snakemake -n` in a fresh process (`job`: the arguments that
    make it one job's own Snakemake)."""
    cmd = [SNAKEMAKE, "-n", "--quiet", "--snakefile", str(REPO / "Snakefile"), "--directory", str(work),
           "--configfile", str(config_path), "--cores", "1", *job]  # fmt: skip
    out = subprocess.run([sys.executable, "-c", MEASURE, *cmd], capture_output=True, text=True, check=False)
    if out.returncode:
        raise SystemExit(out.stderr)
    seconds, peak_kb, nothing = out.stdout.split()
    return float(seconds), int(peak_kb) / 1024, nothing == "True"


@click.command()
@click.option("--sizes", default="6000,60000,600000", show_default=True)
@click.option("--shard-size", default=100, show_default=True, help="paper grids: runs per shard.")
@click.option("--grid", type=click.Choice(["paper", "sensitivity"]), default="paper", show_default=True)
@click.option("--smoke", is_flag=True, help="One 600-run grid: checks the benchmark runs, in seconds.")
@click.option("--out", default="results/benchmarks/dag_scaling.csv", show_default=True)
def main(sizes, shard_size, grid, smoke, out) -> None:
    if smoke:
        sizes, shard_size = "600", 10
    rows = []
    print(f"{'runs':>8} {'shards':>7} {'state':>10} {'seconds':>8} {'peak MB':>8} {'s / 1k runs':>12}")
    for runs in (int(s) for s in sizes.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            config = grid_config(runs, shard_size, grid)
            config_path = work / "config.yaml"
            config_path.write_text(yaml.safe_dump(config))
            shards = shards_of(config)
            outputs = shard_outputs(work, shards)
            n_shards = len(shards)
            runs_total = sum(s.runs for s in shards)
            job = ["--mode", "remote", "--target-jobs", f"train_shard:study=scale,shard={shards[-1].key}"]
            for state in ("scratch", "one job", "half", "all"):
                if state == "one job":
                    seconds, peak, _ = plan(work, config_path, *job)
                    rows.append({"runs": runs_total, "shards": n_shards, "state": state,
                                 "seconds": seconds, "peak_mb": peak})  # fmt: skip
                    print(f"{runs_total:>8} {n_shards:>7} {state:>10} {seconds:>8.1f} {peak:>8.0f}")
                    continue
                if state == "half":  # the inputs prepared, then roughly half the shards done
                    pairs = eval_pairs(shards[0].shifts, shards[0].severities)
                    folder = work / prepared_folder(shards[0].base["dataset"])
                    touch(list(prepared_inputs(folder, pairs).values()))
                    touch(outputs[: len(outputs) // 2])
                if state == "all":
                    touch(outputs[len(outputs) // 2 :])
                    time.sleep(0.01)  # tables and figures newer than every shard
                    applying = [a for a in ANALYSES.values() if a.applies(config["studies"]["scale"])]
                    figures = [f for a in applying for f in a.figures]
                    tables = [*STUDY_TABLES, *(t for a in applying for t in a.tables)]
                    touch([work / f"results/scale/tables/{t}.parquet" for t in tables])
                    time.sleep(0.01)
                    touch([work / f"results/scale/figures/{f}.png" for f in figures])
                    touch([work / f"results/scale/report/{t}.html" for t in REPORT_PAGES])
                seconds, peak, nothing = plan(work, config_path)
                assert nothing == (state == "all"), f"{state}: unexpected plan"
                rows.append({"runs": runs_total, "shards": n_shards, "state": state,
                             "seconds": seconds, "peak_mb": peak})  # fmt: skip
                print(f"{runs_total:>8} {n_shards:>7} {state:>10} {seconds:>8.1f} {peak:>8.0f} "
                      f"{1000 * seconds / runs_total:>12.3f}")  # fmt: skip
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out, index=False)


if __name__ == "__main__":
    main()
