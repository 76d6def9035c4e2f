"""Training throughput of a shard: images/second summed over K models, for each way of running them.

    python benchmarks/throughput.py                      # CPU-sized defaults
    python benchmarks/throughput.py --model fast --dataset synthetic50k --width 64 --batch-size 1024 \\
        --ks 1,8,32,64 --bf16 --compile                  # GPU, real sizes
    python benchmarks/throughput.py --smoke              # seconds; what CI runs

Every variant runs the same recipe (chaosgrid.recipe.fit) on the same data for the same number of steps,
side by side in this one process; each is printed as images/s and as a ratio to the plain loop:
- loop / vmap: one model after another vs K models as one under `torch.func.vmap` (PyTorch's vmap rule for
  convolutions folds the K models into one grouped convolution, so vmap *is* the grouped-convolution way);
- +cl: channels-last weights and batches; +bf16: bf16 autocast (the cell's `precision`);
- +compile: `torch.compile` of the training forward (its one-off compile time is in the warm-up, not counted).
Results also go to results/benchmarks/throughput.csv.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import click
import pandas as pd
import torch

from chaosgrid import data, engine, recipe, train
from chaosgrid.cells import validate_cell


def measure(execution: engine.Execution, k: int, dataset: data.Dataset, params: dict, steps: int):
    """(images per second summed over k models for `steps` optimizer steps, seconds of the warm-up step)."""
    steps_per_epoch = math.ceil(len(dataset.y_train) / params["batch_size"])
    cells = [validate_cell({**params, "init_seed": i, "order_seed": i, "aug_seed": i}) for i in range(k)]
    x, y = train.training_set(dataset, cells[0])
    stacks = [
        (train.build_stack(g, x, dataset.num_classes, execution), g)
        for g in engine.stack_groups(cells, execution)
    ]

    def run(n_steps: int) -> float:
        start = time.perf_counter()
        for stack, group in stacks:
            recipe.fit(stack, [{**c, "epochs": n_steps / steps_per_epoch} for c in group], x, y, execution)
        if x.device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start

    # allocations, kernel selection, compilation: a compiled forward meets both batch shapes of an epoch
    # (the last batch is smaller) and compiles each once, so its warm-up is a whole epoch
    warm_up = run(steps_per_epoch + 1 if execution.compile else 1)
    return k * steps * params["batch_size"] / run(steps), warm_up


def variants(bf16: bool, compile_: bool) -> dict[str, tuple[engine.Execution, str]]:
    """Label -> (execution, precision) of every variant asked for; 'loop' first, the baseline of the ratios."""
    out = {}
    for engine_name in ("loop", "vmap"):
        for precision in ("fp32", "bf16") if bf16 else ("fp32",):
            for channels_last in (False, True):
                for compiled in (False, True) if compile_ else (False,):
                    label = (
                        engine_name
                        + "+cl" * channels_last
                        + "+bf16" * (precision == "bf16")
                        + "+compile" * compiled
                    )
                    out[label] = engine.Execution(engine_name, channels_last, compiled), precision
    return out


@click.command()
@click.option("--model", default="cnn", show_default=True)
@click.option("--dataset", "dataset_name", default="synthetic", show_default=True)
@click.option("--width", default=8, show_default=True)
@click.option("--batch-size", default=256, show_default=True)
@click.option("--steps", default=20, show_default=True, help="Timed optimizer steps per model.")
@click.option("--ks", default="1,8,32", show_default=True, help="Comma-separated models per shard.")
@click.option("--bf16", is_flag=True, help="Add bf16-autocast variants (slow on CPUs without bf16 units).")
@click.option(
    "--compile", "compile_", is_flag=True, help="Add torch.compile variants (~25-50 s to compile each)."
)
@click.option("--threads", default=1, show_default=True)
@click.option("--recipe", "recipe_json", default="{}", show_default=True,
              help='Extra cell parameters as JSON, e.g. \'{"optimizer": "sam"}\' or \'{"grad_clip": 0.5}\': '
                   "the cost of a recipe option against the plain runs of another invocation.")  # fmt: skip
@click.option("--device", default="auto", show_default=True)
@click.option("--smoke", is_flag=True, help="Tiny sizes: checks the benchmark runs, in seconds.")
@click.option("--out", default="results/benchmarks/throughput.csv", show_default=True)
def main(model, dataset_name, width, batch_size, steps, ks, bf16, compile_, threads, recipe_json, device, smoke,
         out) -> None:  # fmt: skip
    torch.set_num_threads(threads)
    if smoke:
        dataset_name, width, batch_size, steps, ks, bf16 = "digits", 4, 64, 2, "1,2", True
    device = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else
                          "cpu" if device == "auto" else device)  # fmt: skip
    dataset = data.load(dataset_name).to(device)
    params = {"dataset": dataset_name, "model": model, "width": width, "batch_size": batch_size,
              "augmentation": "flip_crop", **json.loads(recipe_json)}  # fmt: skip
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({threads} threads)"
    print(f"{model} width {width} on {dataset_name} {tuple(dataset.x_train.shape[1:])}, batch {batch_size}, "
          f"{steps} steps, {name}, recipe {recipe_json}; images/s summed over K models (ratio to loop)")  # fmt: skip
    rows = []
    for k in (int(v) for v in ks.split(",")):
        baseline = None
        for label, (execution, precision) in variants(bf16, compile_).items():
            img_s, warm_up = measure(execution, k, dataset, {**params, "precision": precision}, steps)
            baseline = baseline or img_s
            rows.append({"model": model, "width": width, "dataset": dataset_name, "device": name, "k": k,
                         "variant": label, "img_s": img_s, "ratio_to_loop": img_s / baseline,
                         "warm_up_s": warm_up})  # fmt: skip
            print(
                f"K={k:<3} {label:<22} {img_s:>10.0f} img/s  {img_s / baseline:>5.2f}x   (warm-up {warm_up:.1f} s)"
            )
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(out, index=False)


if __name__ == "__main__":
    main()
