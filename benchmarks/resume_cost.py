"""What a shard's saved state costs (`--resume`, `save_every`): seconds and bytes of one save, and the
seconds a resumed shard spends replaying its batch orders and augmentations up to the saved step.

    python benchmarks/resume_cost.py                      # the default cnn and a paper-sized resnet18, CPU
    python benchmarks/resume_cost.py --device cuda        # on a GPU (the copies to the CPU are part of it)
    python benchmarks/resume_cost.py --smoke              # seconds; what CI runs

A save is what `recipe.fit` does every `save_every` seconds: every run's weights and optimizer state copied
to the CPU and written atomically with torch.save (`chaosgrid.resume.Resume.write`), plus the statistics so far.
Results: results/benchmarks/resume_cost.csv.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import click
import pandas as pd
import torch

from chaosgrid import engine, optimizers, recipe, train
from chaosgrid.batches import Batches
from chaosgrid.cells import validate_cell
from chaosgrid.footprint import DATASETS
from chaosgrid.resume import Resume

# (name, cell, runs per shard): the default grid's recipe, and study 3's resnet18 on CIFAR-10 as its shards
# hold it.
CASES = [
    ("default cnn, 8 runs", {"model": "cnn", "width": 16, "dataset": "digits"}, 8),
    ("paper resnet18, 1 run", {"model": "resnet18", "width": 64, "dataset": "cifar10"}, 1),
]


def measure(name: str, cell: dict, k: int, device: str, repeats: int) -> dict:
    shape, _, examples, _ = DATASETS[cell["dataset"]]
    cells = [validate_cell({**cell, "init_seed": i, "order_seed": i, "aug_seed": i}) for i in range(k)]
    x = torch.zeros(4, *shape, device=device)
    stack = train.build_stack(cells, x, 10, engine.Execution("loop"))
    optimizer = optimizers.Optimizer(stack, cells)
    for p in stack.params:  # momentum buffers as after a step
        p.grad = torch.zeros_like(p)
    optimizer.step(torch.full((k,), cells[0]["lr"], dtype=torch.float64))
    stats = recipe.RunStats(k, torch.device(device), 1000, 10)
    with tempfile.TemporaryDirectory() as folder:
        resume = Resume(str(Path(folder) / "state.pt"), "{}", 600.0, lambda line: None)
        seconds = []
        for _ in range(repeats):
            began = time.perf_counter()
            resume.write({"group": 0, "results": [], "evals": {}, "weights": {},
                          "fit": {"step": 1, "stack": stack.state_dicts(), "optimizer": optimizer.state_dict(),
                                  "stats": stats.state(), "rng": torch.get_rng_state()}})  # fmt: skip
            seconds.append(time.perf_counter() - began)
        size = resume.path.stat().st_size
    # replaying a resumed fit's draws: one epoch of batch orders and augmentations of `examples` examples
    batches = Batches([{**c, "augmentation": "flip_crop"} for c in cells], torch.zeros(examples, *shape),
                             torch.zeros(examples, dtype=torch.long), 64, engine.Execution("loop"))  # fmt: skip
    steps = -(-examples // 64)
    began = time.perf_counter()
    batches.skip(steps)
    replay = (time.perf_counter() - began) / steps
    return {
        "case": name,
        "runs": k,
        "save_s": min(seconds),
        "save_mb": size / 1e6,
        "replay_ms_per_step": 1e3 * replay,
    }


@click.command()
@click.option("--device", default="cpu", show_default=True)
@click.option("--repeats", default=3, show_default=True, help="Saves per case; the fastest counts.")
@click.option("--smoke", is_flag=True, help="The small case once: checks the benchmark runs.")
@click.option("--out", default="results/benchmarks/resume_cost.csv", show_default=True)
def main(device, repeats, smoke, out) -> None:
    cases = CASES[:1] if smoke else CASES
    rows = [measure(*case, device, 1 if smoke else repeats) for case in cases]
    table = pd.DataFrame(rows)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(out, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
