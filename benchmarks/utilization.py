"""How close shards come to the device's limit: FLOPs per run, achieved FLOP/s beside the measured matmul peak,
and what named GPUs would reach on the paper recipes.

    python benchmarks/utilization.py            # this machine (~6 min on 2 CPU cores)
    python benchmarks/utilization.py --smoke    # seconds; what CI runs

FLOPs are chaosgrid.footprint's (torch's FlopCounterMode on the meta device, shapes only, through the models'
size table; 2 per multiply-add, matmuls and convolutions only, as published MFU figures count): per training
image a forward and backward pass (three forward passes), per evaluation image a forward pass.

Measured, for the default grid's cnn on digits (config/config.yaml, each axis at its first value, the whole
recipe) and the fast net at paper size (width 64, 32x32 images, batches of 1024, --fast-steps steps): K runs
trained and evaluated in this process by chaosgrid.train.train_shard (a shard job without its start-up),
FLOPs done / seconds, beside the FLOP/s of a large matmul timed in the same process (fp32 on a CPU, bf16 on
a GPU), and their ratio.

Projected, for every study of the paper configs: mean FLOPs per run over the study's grid (training images
= epochs x training-set size, x2 with SAM or a gradient penalty; evaluation: every set at every checkpoint),
and runs/hour on GPUs at 100% and 40% of their published dense bf16 peak, beside airbench's published
3.83 s per run on an A100 (94% on CIFAR-10, the recipe of the fast net). Results:
results/benchmarks/utilization.csv.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import pandas as pd
import torch
import yaml

from chaosgrid import data, engine, evalsets, footprint, shifts, train
from chaosgrid.cells import validate_cell
from chaosgrid.plan.blocks import STUDY_KEYS
from chaosgrid.plan.studies import expand_study

REPO = Path(__file__).resolve().parents[1]
PAPER_CONFIGS = ("calibrated_chaos.yaml", "double_descent.yaml", "full_batch.yaml")
GPU_BF16_PEAK = {"H100 SXM": 989e12, "A100": 312e12}  # dense bf16 tensor-core FLOP/s, NVIDIA's datasheets
AIRBENCH_A100_S = 3.83  # seconds per run, airbench94 (Jordan 2024), the fast net's recipe


def matmul_peak(device: torch.device, n: int = 2048, repeat: int = 10) -> float:
    """FLOP/s of an n x n matmul in this process: fp32 on a CPU, bf16 on a GPU."""
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a, b = (torch.randn(n, n, device=device, dtype=dtype) for _ in range(2))
    a @ b
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(repeat):
        a @ b
    sync()
    return 2 * n**3 * repeat / (time.perf_counter() - start)


def achieved(
    name: str, base: dict, dataset: data.Dataset, pairs: list, ks: list[int], peak: float
) -> list[dict]:
    """Train and evaluate K runs in this process for each K; FLOPs done (chaosgrid.footprint.flops: what
    planning sizes jobs and GPU-hours by) per second against `peak`."""
    sets = shifts.eval_sets(dataset, pairs)
    named = sorted({shift for shift, _ in pairs if shift != evalsets.CLEAN[0]})
    severities = sorted({severity for shift, severity in pairs if shift != evalsets.CLEAN[0]})
    per_run = footprint.flops(validate_cell(base), named, severities)
    rows = []
    for k in ks:
        cells = [validate_cell({**base, "init_seed": s, "order_seed": s, "aug_seed": s}) for s in range(k)]
        start = time.perf_counter()
        train.train_shard(cells, dataset, sets, engine.Execution("auto"))
        if dataset.x_train.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        rate = k * per_run / seconds
        rows.append({"recipe": name, "k": k, "gflop_per_run": per_run / 1e9, "seconds": seconds,
                     "achieved_gflops": rate / 1e9, "peak_gflops": peak / 1e9, "utilization": rate / peak})  # fmt: skip
        print(f"{name:<28} {k:>3} {per_run / 1e9:>12,.1f} {seconds:>9.1f} {rate / 1e9:>10.1f} {peak / 1e9:>9.1f} "
              f"{100 * rate / peak:>7.1f}%")  # fmt: skip
    return rows


def projections() -> list[dict]:
    """Mean FLOPs per run of every paper study, and runs/hour on named GPUs at 100% and 40% of peak."""
    rows = []
    for config in PAPER_CONFIGS:
        for study, declared in yaml.safe_load((REPO / "config" / config).read_text())["studies"].items():
            per_shard = [(footprint.flops(shard.base, shard.shifts, shard.severities, shard.checkpoints),
                          len(shard.seed_indices))
                         for shard in expand_study(study, declared)]  # fmt: skip
            runs = sum(n for _, n in per_shard)
            mean = sum(f * n for f, n in per_shard) / runs
            row = {"config": config, "study": study, "runs": runs, "pflop_per_run": mean / 1e15}
            for gpu, peak in GPU_BF16_PEAK.items():
                row[f"{gpu} runs/h at 100%"] = 3600 * peak / mean
                row[f"{gpu} runs/h at 40%"] = 0.4 * 3600 * peak / mean
            row["H100 SXM GPU-hours at 40%"] = runs * mean / (0.4 * GPU_BF16_PEAK["H100 SXM"]) / 3600
            rows.append(row)
    return rows


@click.command()
@click.option("--ks", default="1,8,64", show_default=True, help="Runs per shard for the default cnn.")
@click.option(
    "--fast-ks", default="1,8", show_default=True, help="Runs per shard for the fast net (GPU: 1,8,64)."
)
@click.option("--fast-steps", default=1, show_default=True, help="Training steps of the fast net's runs.")
@click.option("--threads", default=1, show_default=True)
@click.option("--smoke", is_flag=True, help="Tiny sizes: checks the benchmark runs, in seconds.")
@click.option("--out", default="results/benchmarks/utilization.csv", show_default=True)
def main(ks, fast_ks, fast_steps, threads, smoke, out) -> None:
    torch.set_num_threads(threads)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    default = yaml.safe_load((REPO / "config/config.yaml").read_text())["studies"]["default"]
    cnn = {k: v[0] if isinstance(v, list) else v for k, v in default.items() if k not in STUDY_KEYS}
    fast = {"dataset": "synthetic", "model": "fast", "width": 64, "batch_size": 1024, "lr": 0.2,
            "label_smoothing": 0.2, "augmentation": "flip_crop"}  # fmt: skip
    if smoke:
        cnn, ks, fast, fast_ks = (
            {**cnn, "epochs": 0.2, "width": 4},
            "2",
            {**fast, "width": 4, "batch_size": 64},
            "1",
        )
    fast["epochs"] = fast_steps * fast["batch_size"] / footprint.DATASETS["synthetic"][2]
    peak = matmul_peak(device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({threads} threads)"
    print(f"{where}: matmul peak {peak / 1e9:,.1f} GFLOP/s ({'bf16' if device.type == 'cuda' else 'fp32'})\n")
    print(
        f"{'recipe':<28} {'K':>3} {'GFLOP/run':>12} {'seconds':>9} {'GFLOP/s':>10} {'peak':>9} {'of peak':>8}"
    )
    rows = []
    for name, base in (
        (f"cnn w{cnn['width']} digits (default)", cnn),
        (f"fast w{fast['width']} 32x32", fast),
    ):
        dataset = data.load(base["dataset"]).to(device)
        pairs = (
            evalsets.eval_pairs(default["shifts"], default["severities"]) if base is cnn else [evalsets.CLEAN]
        )
        rows += achieved(name, base, dataset, pairs, [int(k) for k in str(ks if base is cnn else fast_ks).split(",")],
                         peak)  # fmt: skip
    paper = pd.DataFrame(projections())
    print(f"\npaper recipes: runs/hour at 100% / 40% of the published dense bf16 peak "
          f"(airbench: {3600 / AIRBENCH_A100_S:,.0f} runs/hour on an A100, {AIRBENCH_A100_S} s per run)")  # fmt: skip
    with pd.option_context("display.width", 200, "display.float_format", "{:,.3g}".format):
        print(paper.to_string(index=False))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    pd.concat([pd.DataFrame(rows), paper]).to_csv(out, index=False)


if __name__ == "__main__":
    main()
