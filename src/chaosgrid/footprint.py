"""A shard job's footprint, known before it runs: its dataset's size, its model's parameters and the bytes
a training example keeps for the backward pass, its FLOPs, which engine runs its models, the memory of a
job (CPU or GPU) and the compute of a run.

Planning is torch-free, so model sizes come from a table (`model_sizes.json`): per built-in model and input
(example shape, classes), exact polynomials in the width, fitted at widths 2, 3 and 4 on torch's meta
device (`chaosgrid.models.measured_sizes`; `chaosgrid model-sizes --write` remakes the table, and a test
checks it at widths it was not fitted on): parameters and forward FLOPs per example a0 + a1 w + a2 w^2
(every channel count is a multiple of the width) and saved bytes per example b0 + b1 w. (wrn28 at width 1
lacks one shortcut convolution: the estimate is a few thousand parameters high there.)
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from chaosgrid import checkpoints as checkpoints_
from chaosgrid.evalsets import eval_pairs

TABLE = Path(__file__).with_name("model_sizes.json")
# The built-in datasets: example shape, classes, training and test examples.
DATASETS = {
    "digits": ((1, 8, 8), 10, 1_438, 359),
    "synthetic": ((3, 32, 32), 10, 5_000, 1_000),
    "synthetic50k": ((3, 32, 32), 10, 50_000, 10_000),
    "mnist1d": ((1, 1, 40), 10, 2_000, 10_000),
    "cifar10": ((3, 32, 32), 10, 50_000, 10_000),
    "cifar100": ((3, 32, 32), 100, 50_000, 10_000),
    "svhn": ((3, 32, 32), 10, 73_257, 26_032),
    "mnist": ((1, 28, 28), 10, 60_000, 10_000),
    "fashion_mnist": ((1, 28, 28), 10, 60_000, 10_000),
}
SET_EXAMPLES = {"cifar10_1": 2_000, "planes": 0}  # planes are made chunk by chunk; shifts: the test set's
FIT_WIDTHS = (2, 3, 4)

# Largest image (H*W) for which vmap beats the loop on a CPU. Measured with benchmarks/throughput.py, cnn
# width 8, 1 thread: 8x8 digits, vmap/loop = 1.71 at K=8 and 1.47 at K=32 (per-step Python overhead
# dominates tiny nets); 32x32 images, 0.23 at K=8 and 0.17 at K=32 (the batched convolutions lose).
CPU_VMAP_MAX_PIXELS = 16 * 16
# Measured with benchmarks/memory.py (CPU, torch 2.14): a shard job of two width-4 cnns on digits peaks at
# 704 MB (`import torch` alone: 507 MB; 841 MB while torch.optim's first step imported torch._dynamo); 8 cnns
# or mlps of 6-17M parameters under vmap take ~5 copies of their parameters (weights, the modules they were
# stacked from, gradients, momentum, an update's temporaries).
PROCESS_MB = 720
PARAMETER_COPIES = {"sgd": 5, "adam": 6, "adamw": 6, "sam": 6}  # Adam: two moments; SAM: its ascent step
# A gradient penalty holds four more per micro-batch (the weights saved, the gradient, the shifted point's
# gradient, their sum): a rehearsal of full_batch.yaml's fb_reg_10_copies measured 2,012 MB against 1,716
# estimated without them, 0.85 (with them: 0.94).
PENALTY_COPIES = 4
# On a GPU: a CUDA context with cuBLAS and cuDNN loaded (typical, not measured here: no GPU has been lent),
# and the share of the card's memory a job may plan on (the caching allocator fragments the rest).
CUDA_CONTEXT_MB = 600
GPU_USABLE = 0.9


def choose_engine(engine: str, on_gpu: bool, pixels: int = 32 * 32, k: int = 1) -> str:
    """'auto' picks by measurement, never by a timing taken now (that would make results depend on load):
    vmap on CUDA; on a CPU, vmap for shards of 8+ runs on small images and the loop otherwise."""
    if engine == "auto":
        return "vmap" if on_gpu or (pixels <= CPU_VMAP_MAX_PIXELS and k >= 8) else "loop"
    if engine not in ("loop", "vmap"):
        raise ValueError(f"unknown engine {engine!r}; choose auto, loop or vmap")
    return engine


def size_key(model: str, shape: tuple[int, ...], classes: int) -> str:
    return f"{model} {'x'.join(map(str, shape))} {classes}"


@cache
def _table() -> dict:
    return json.loads(TABLE.read_text())


def model_sizes(model: str, shape: tuple[int, ...], classes: int, width: int) -> tuple[int, int, int] | None:
    """(parameters, bytes saved per training example, FLOPs of one example's forward pass) of a built-in
    model, or None where the table has none (the user's own model, or an input it does not take)."""
    entry = _table().get(size_key(model, shape, classes))
    if entry is None:
        return None
    b0, b1 = entry["saved_bytes"]
    return _polynomial(entry["parameters"], width), b0 + b1 * width, _polynomial(entry["flops"], width)


def _polynomial(coefficients: list[int], x: int) -> int:
    return sum(a * x**i for i, a in enumerate(coefficients))


@dataclass(frozen=True)
class Workload:
    """What a shard's runs hold and compute, from the tables: a model's sizes and the examples it meets."""

    parameters: int
    saved: int  # bytes autograd keeps per training example
    flops: int  # one example's forward pass
    image_bytes: int  # one example, float32
    n_train: int  # the training set as loaded
    trained: int  # examples per epoch (data_fraction, augment_copies)
    tested: int  # examples of every evaluation set, the clean test set included
    pixels: int


def workload(
    cell: dict, shifts=(), severities=(), examples: tuple[int, int] | None = None
) -> Workload | None:
    """A cell's workload; `examples`: (training, test) sizes of a stand-in for its dataset, every evaluation
    set test-sized. None for a dataset or model the table does not know (the user's own)."""
    if cell["dataset"] not in DATASETS or cell["trainer"]:
        return None
    shape, classes, n_train, n_test = DATASETS[cell["dataset"]]
    sets = SET_EXAMPLES if examples is None else {"planes": 0}
    n_train, n_test = examples or (n_train, n_test)
    sizes = model_sizes(cell["model"], shape, classes, cell["width"])
    if sizes is None:
        return None
    tested = sum(
        n_test if shift == "clean" else sets.get(shift, n_test)
        for shift, _ in eval_pairs(tuple(shifts), tuple(severities))
    )
    trained = round(n_train * cell["data_fraction"]) * (1 + cell["augment_copies"])
    return Workload(*sizes, 4 * math.prod(shape), n_train, trained, tested, shape[-1] * shape[-2])


def memory_mb(
    cell: dict,
    runs: int,
    shifts=(),
    severities=(),
    checkpoints: str = "final",
    weights: bool = False,
    engine: str = "auto",
    examples: tuple[int, int] | None = None,
    on_gpu: bool = False,
    stack: int = 0,
) -> dict | None:
    """A shard job's peak memory, estimated: the process (on a GPU: its CUDA context), its data (the training
    set twice: as prepared and as trained on; every evaluation set), its models (weights, gradients,
    optimizer state) and the bytes their training examples keep for the backward pass (under vmap all runs
    at once, or `stack` at a time; one under the loop), and the weights it keeps until written. None where
    `workload` is."""
    load = workload(cell, shifts, severities, examples)
    if load is None:
        return None
    batch = min(cell["micro_batch"] or cell["batch_size"], load.trained)
    vmap = choose_engine(engine, on_gpu, load.pixels, runs) == "vmap"
    together = min(runs, stack or runs) if vmap else 1
    kept = checkpoint_count(cell, checkpoints, load.trained) if weights else 0
    copies = PARAMETER_COPIES[cell["optimizer"]] + (PENALTY_COPIES if cell["grad_penalty"] > 0 else 0)
    parts = {
        "process": (CUDA_CONTEXT_MB if on_gpu else PROCESS_MB) * 1e6,
        "data": load.image_bytes * (load.n_train + load.trained + load.tested),
        "models": together * 4 * load.parameters * copies,
        "activations": together * batch * load.saved,
        "kept weights": runs * 4 * load.parameters * kept,
    }
    return {
        "mb": sum(parts.values()) / 1e6,
        "parameters": load.parameters,
        "together": together,
        **{name: value / 1e6 for name, value in parts.items()},
    }


def stack_size(cell: dict, runs: int, limit_mb: float, **options) -> int | None:
    """How many of a shard's `runs` one job trains at once within `limit_mb` (its mem_mb, or a GPU's usable
    memory): 0 where all fit together (or only one trains at a time, the loop), else the most that fit, at
    least 1. None where memory_mb is. `options` as memory_mb's."""
    if (found := memory_mb(cell, runs, **options)) is None:
        return None
    if found["together"] < runs or found["mb"] <= limit_mb:
        return 0
    low, high = 1, runs - 1  # memory grows with the runs held together: the largest stack within the limit
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (
            (middle, high)
            if memory_mb(cell, runs, **options, stack=middle)["mb"] <= limit_mb
            else (low, middle - 1)
        )
    return low


def flops(
    cell: dict, shifts=(), severities=(), checkpoints: str = "final", examples: tuple[int, int] | None = None
) -> float | None:
    """The FLOPs of one run: its training (forward and backward, about three forward passes per example;
    twice that with SAM's or a gradient penalty's second pass) and the evaluation of every set at each
    checkpoint. Probe planes and curves are left out. `examples` as workload's."""
    load = workload(cell, shifts, severities, examples)
    return None if load is None else run_flops(cell, load, checkpoints)


def run_flops(cell: dict, load: Workload, checkpoints: str = "final") -> float:
    """`flops` of a run whose workload is known."""
    passes = 6 if cell["optimizer"] == "sam" or cell["grad_penalty"] > 0 else 3
    batch, _, total = checkpoints_.training_steps(cell, load.trained)
    evaluations = checkpoint_count(cell, checkpoints, load.trained)
    return passes * load.flops * batch * total + load.flops * load.tested * evaluations


def checkpoint_count(cell: dict, checkpoints: str, trained: int) -> int:
    """The checkpoints a run keeps (its evaluations, and its weights where kept) on `trained` examples an
    epoch: the distinct steps its declaration names (`checkpoints.steps`); for `snapshots`, the schedule's
    cycles, at most one a step."""
    _, per_epoch, total = checkpoints_.training_steps(cell, trained)
    if checkpoints == "snapshots":
        return min(cell["cycles"], total)
    return len(checkpoints_.steps(checkpoints, total, per_epoch))
