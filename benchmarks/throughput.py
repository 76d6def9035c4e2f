"""Training throughput of a shard: images/second summed over K models, vmap-batched vs a plain loop.

    python benchmarks/throughput.py                      # CPU-sized defaults
    python benchmarks/throughput.py --model fast --dataset synthetic50k --ks 1,8,32,64 --width 64   # GPU
    python benchmarks/throughput.py --smoke              # seconds; what CI runs

Both engines run the same recipe (chaosgrid.train.fit) on the same data for the same number of steps;
the printed ratio is vmap / loop, measured side by side in this one process. Results also go to
results/benchmarks/throughput.csv.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import click
import pandas as pd
import torch

from chaosgrid import data, train
from chaosgrid.grid import validate_cell


def measure(engine: str, k: int, dataset: data.Dataset, params: dict, steps: int) -> float:
    """Images per second summed over k models for `steps` optimizer steps (after one warm-up step)."""
    steps_per_epoch = math.ceil(len(dataset.y_train) / params["batch_size"])
    cells = [validate_cell({**params, "init_seed": i, "order_seed": i, "aug_seed": i}) for i in range(k)]
    x, y = train.training_set(dataset, cells[0])
    groups = [cells] if engine == "vmap" else [[c] for c in cells]
    stack_type = train.VmapStack if engine == "vmap" else train.LoopStack
    stacks = [(stack_type([train.init_model(c, x).to(x.device) for c in g]), g) for g in groups]

    def run(n_steps: int) -> float:
        start = time.perf_counter()
        for stack, group in stacks:
            train.fit(stack, [{**c, "epochs": n_steps / steps_per_epoch} for c in group], x, y)
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    run(1)  # warm-up: allocations, kernel selection
    return k * steps * params["batch_size"] / run(steps)


@click.command()
@click.option("--model", default="cnn", show_default=True)
@click.option("--dataset", "dataset_name", default="synthetic", show_default=True)
@click.option("--width", default=8, show_default=True)
@click.option("--batch-size", default=256, show_default=True)
@click.option("--steps", default=20, show_default=True, help="Timed optimizer steps per model.")
@click.option("--ks", default="1,8,32", show_default=True, help="Comma-separated models per shard.")
@click.option("--threads", default=1, show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--smoke", is_flag=True, help="Tiny sizes: checks the benchmark runs, in seconds.")
@click.option("--out", default="results/benchmarks/throughput.csv", show_default=True)
def main(model, dataset_name, width, batch_size, steps, ks, threads, device, smoke, out) -> None:
    torch.set_num_threads(threads)
    if smoke:
        dataset_name, width, batch_size, steps, ks = "digits", 4, 64, 2, "1,2"
    device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                          "cpu" if device == "auto" else device)  # fmt: skip
    dataset = data.load(dataset_name).to(device)
    params = {"dataset": dataset_name, "model": model, "width": width, "batch_size": batch_size,
              "augmentation": "flip_crop"}  # fmt: skip
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({threads} threads)"
    print(f"{model} width {width} on {dataset_name} {tuple(dataset.x_train.shape[1:])}, batch {batch_size}, "
          f"{steps} steps, {name}")  # fmt: skip
    rows = []
    print(f"{'K':>4} {'loop img/s':>12} {'vmap img/s':>12} {'vmap/loop':>10}")
    for k in (int(v) for v in ks.split(",")):
        loop = measure("loop", k, dataset, params, steps)
        vmapped = measure("vmap", k, dataset, params, steps)
        rows.append({"model": model, "width": width, "dataset": dataset_name, "device": name, "k": k,
                     "loop_img_s": loop, "vmap_img_s": vmapped, "ratio": vmapped / loop})  # fmt: skip
        print(f"{k:>4} {loop:>12.0f} {vmapped:>12.0f} {vmapped / loop:>10.2f}")
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out, index=False)


if __name__ == "__main__":
    main()
