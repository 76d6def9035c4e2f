"""Runs per hour of a user's model through a shard beside the same model built in: what the plug-in path costs.

    python benchmarks/own_model.py            # cnn width 8 on digits, 16 runs of 2 epochs, 3 rounds
    python benchmarks/own_model.py --smoke    # seconds; what CI runs

The user's model is `own_model:cnn_as_own`, defined below: it builds exactly the built-in `cnn`, but reaches
the shard as the user's code does (imported by reference; under vmap, first checked by a trial step that it
stacks). Each round trains the same K runs as the built-in and as the user's model, on the loop and under
vmap, one after the other in this one process (A/B alternated, so load affects both alike), through
`train.shard_inputs` and `train.train_shard`: the path a shard job takes. Results:
results/benchmarks/own_model.csv.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import pandas as pd
import torch

from chaosgrid import engine, models, train
from chaosgrid.cells import validate_cell
from chaosgrid.plan.specs import Shard

sys.path.insert(0, str(Path(__file__).parent))  # so that "own_model:cnn_as_own" imports this file


def cnn_as_own(in_shape: tuple[int, ...], num_classes: int, width: int) -> torch.nn.Module:
    """The built-in cnn, as a user's model (the plug-in signature)."""
    return models.CNN(in_shape[0], num_classes, width)


def runs_per_hour(model: str, engine_name: str, k: int, epochs: float, width: int) -> float:
    base = validate_cell({"model": model, "width": width, "epochs": epochs})
    base = {key: v for key, v in base.items() if not key.endswith("_seed")}
    shard = Shard("bench", "", base, tuple(range(k)))
    start = time.perf_counter()
    inputs = train.shard_inputs(
        shard, torch.device("cpu"), engine.Execution(engine_name), log=lambda line: None
    )
    train.train_shard(shard.cells(), inputs.data, inputs.sets, inputs.execution)
    return k / (time.perf_counter() - start) * 3600


@click.command()
@click.option("--k", default=16, show_default=True, help="Runs per shard.")
@click.option("--epochs", default=2.0, show_default=True)
@click.option("--width", default=8, show_default=True)
@click.option("--rounds", default=3, show_default=True, help="A/B repetitions, alternated.")
@click.option("--smoke", is_flag=True, help="2 runs of a tenth of an epoch, one round: checks it runs.")
@click.option("--out", default="results/benchmarks/own_model.csv", show_default=True)
def main(k, epochs, width, rounds, smoke, out) -> None:
    torch.set_num_threads(1)
    if smoke:
        k, epochs, rounds = 2, 0.1, 1
    runs_per_hour("cnn", "loop", 1, 0.05, width)  # warm-up: imports and the first data load, not timed
    rows = []
    for r in range(rounds):
        for engine_name in ("loop", "vmap"):
            for label, model in (("built-in", "cnn"), ("own", "own_model:cnn_as_own")):
                rate = runs_per_hour(model, engine_name, k, epochs, width)
                rows.append({"round": r, "engine": engine_name, "model": label, "runs_per_hour": rate})
                print(f"round {r} {engine_name:>4} {label:>8}: {rate:8,.0f} runs/hour", flush=True)
    table = pd.DataFrame(rows)
    summary = table.pivot_table(index=["round", "engine"], columns="model", values="runs_per_hour")
    summary["own / built-in"] = summary["own"] / summary["built-in"]
    print(summary.round(3).to_string())
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)


if __name__ == "__main__":
    main()
