"""Train the runs of one shard together: one data load, K models, per-run seeds for init, order, augmentation.

Two engines share every line of the recipe and differ only in how K models take a step:
- `loop`: one model at a time (K=1 stacks in sequence), fastest on a CPU for images of CIFAR's size;
- `vmap`: the K models' parameters stacked and called through `torch.func.functional_call` under `vmap`,
  so a GPU runs K tiny networks as one wide one (and a CPU saves per-step Python overhead on tiny inputs).
  BatchNorm running statistics are stacked buffers too.
For the same cells both engines give the same predictions up to float rounding (tested).

A run whose loss goes NaN/inf is marked diverged at that step; the others are unaffected.

What a run computes is its cell (precision and test-time flips included); *how* it runs — engine,
channels-last memory format, `torch.compile` — is an `Execution`, which changes speed and float rounding only
and is recorded in every runs row.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from chaosgrid import models
from chaosgrid.data import (
    NUM_CLASSES,
    Dataset,
    apply_augmentation,
    balanced_subset,
    batch_indices,
    derive_seed,
    draw_augmentation,
    generator,
    noisy_labels,
)
from chaosgrid.grid import SEED_KEYS

# Eval examples per forward pass. Measured on a 2-core CPU (1 thread, fast net width 16, 32x32 images): about
# 1,300 img/s in chunks of 128 vs 650 in chunks of 2048 (activations outgrow the cache); a GPU wants large ones.
EVAL_CHUNK = {"cpu": 128, "cuda": 2048}


@dataclass
class EvalResult:
    pred: np.ndarray  # uint8, predicted class per example
    p_true: np.ndarray  # float16, softmax probability of the true class per example
    correct: np.ndarray  # bool, pred == label per example (what every variance statistic reads)
    acc: float


@dataclass
class RunResult:
    cell: dict
    train_loss: float  # mean over the last epoch's batches (augmented, as trained)
    train_acc: float
    diverged_step: int  # first step with a non-finite loss; -1 if none
    wall_s: float  # seconds of this run's training and evaluation (a shard's time split evenly under vmap)
    evals: dict[tuple[str, int], EvalResult]


def training_set(data: Dataset, cell: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised training images and (possibly noisy) labels that a cell trains on."""
    keep = balanced_subset(data.y_train.cpu(), cell["data_fraction"]).to(data.x_train.device)
    x, y = data.normalize(data.x_train[keep]), data.y_train[keep]
    return x, noisy_labels(y, cell["label_noise"])


def lr_factor(schedule: str, warmup: float, total_steps: int) -> Callable[[int], float]:
    """Multiplier of the peak lr at each step: linear warm-up, then constant, linear/cosine decay or steps."""
    warm = max(1, round(warmup * total_steps)) if warmup > 0 else 0

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total_steps - warm)
        if schedule == "linear":
            return 1 - progress
        if schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * progress))
        if schedule == "step":
            return 0.1 ** ((progress >= 0.5) + (progress >= 0.75))
        return 1.0

    return factor


def init_model(cell: dict, x_train: torch.Tensor) -> nn.Module:
    """The cell's model at initialisation, built on the CPU from its init seed (device-independent)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed("init", cell["init_seed"]))
        model = models.build(cell["model"], x_train.shape[1], NUM_CLASSES, cell["width"])
    if isinstance(model, models.FastNet):
        model.whiten.fit(x_train[:5000].cpu())
    if cell["perturbation"] == "weight":
        with torch.no_grad():
            next(p for p in model.parameters() if p.dim() > 1).view(-1)[0] *= 1.001
    return model


class LoopStack:
    """K independent modules; a step runs them one after another."""

    def __init__(self, modules: list[nn.Module]):
        self.modules = modules

    def parameters(self) -> list[torch.Tensor]:
        return [p for m in self.modules for p in m.parameters()]

    def train(self, mode: bool) -> None:
        for m in self.modules:
            m.train(mode)

    def __call__(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        return torch.stack([m(x if shared else x[k]) for k, m in enumerate(self.modules)])


class VmapStack:
    """K modules of one architecture as stacked tensors, called through `functional_call` under `vmap`."""

    def __init__(self, modules: list[nn.Module]):
        self.params, self.buffers = stack_module_state(modules)
        self.base = copy.deepcopy(modules[0]).to("meta")

    def parameters(self) -> list[torch.Tensor]:
        return list(self.params.values())

    def train(self, mode: bool) -> None:
        self.base.train(mode)

    def _one(self, params, buffers, x):
        return functional_call(self.base, (params, buffers), (x,))

    def __call__(self, x: torch.Tensor, shared: bool = False) -> torch.Tensor:
        return vmap(self._one, in_dims=(0, 0, None if shared else 0))(self.params, self.buffers, x)


@dataclass(frozen=True)
class Execution:
    """How a shard runs, as opposed to what it computes: changes speed and float rounding, never the recipe."""

    engine: str = "auto"  # auto | loop | vmap (see choose_engine)
    channels_last: bool = False  # NHWC weights and batches: the layout GPU tensor cores and oneDNN prefer
    compile: bool = False  # torch.compile the training forward; one-off ~15-50 s per batch shape on a CPU

    def resolved(self, device: torch.device, pixels: int, k: int) -> Execution:
        return replace(self, engine=choose_engine(self.engine, device, pixels, k))

    def __str__(self) -> str:
        return ", ".join([self.engine] + ["channels-last"] * self.channels_last + ["compiled"] * self.compile)


def autocast(device: torch.device, precision: str, fp16: bool = False) -> torch.autocast:
    """Autocast context of a forward pass: bf16 when the cell asks for it, fp16 for the one perturbed batch."""
    dtype = torch.float16 if fp16 else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype, enabled=fp16 or precision == "bf16")


def memory_format(execution: Execution) -> torch.memory_format:
    return torch.channels_last if execution.channels_last else torch.contiguous_format


def stack_groups(cells: list[dict], execution: Execution) -> list[list[dict]]:
    """The cells trained together: all at once under vmap, one at a time in the loop."""
    return [cells] if execution.engine == "vmap" else [[c] for c in cells]


def build_stack(cells: list[dict], x: torch.Tensor, execution: Execution) -> LoopStack | VmapStack:
    """The cells' models at initialisation on x's device, stacked for the (resolved) engine, in its layout."""
    modules = [init_model(c, x).to(x.device, memory_format=memory_format(execution)) for c in cells]
    return VmapStack(modules) if execution.engine == "vmap" else LoopStack(modules)


def fit(stack: LoopStack | VmapStack, cells: list[dict], x: torch.Tensor, y: torch.Tensor,
        execution: Execution = Execution()):  # fmt: skip
    """Train the stack's K models, each on its own batch order and augmentation; returns per-run statistics.

    Returns (train_loss, train_acc, diverged_step) as CPU tensors of length K. Nothing here synchronises
    with the device inside the loop: divergence is tracked as a tensor. Only the training forward pass is
    compiled: evaluation changes mode and batch shape, and each would cost another compilation.
    """
    cell = cells[0]
    n, k, device = len(y), len(cells), x.device
    steps_per_epoch = math.ceil(n / cell["batch_size"])
    total = max(1, round(cell["epochs"] * steps_per_epoch))
    optimizer = torch.optim.SGD(
        stack.parameters(),
        lr=cell["lr"],
        momentum=cell["momentum"],
        nesterov=cell["nesterov"] and cell["momentum"] > 0,
        weight_decay=cell["weight_decay"],
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor(cell["schedule"], cell["warmup"], total))
    orders = [batch_indices(n, cell["batch_size"], generator("order", c["order_seed"])) for c in cells]
    aug_generators = [generator("aug", c["aug_seed"]) for c in cells]
    diverged = torch.full((k,), -1, dtype=torch.long, device=device)
    loss_sum = torch.zeros(k, device=device)
    correct = torch.zeros(k, device=device)
    seen = 0
    forward = torch.compile(stack.__call__) if execution.compile else stack
    layout = memory_format(execution)
    stack.train(True)
    for step in range(total):
        # the K runs' batches as one (K*B) batch: one gather and one augmentation call whatever K is
        idx = torch.cat([next(order) for order in orders])
        batch = len(idx) // k
        draws = [draw_augmentation(batch, x.shape[-2], cell["augmentation"], g) for g in aug_generators]
        shifts, flips = (torch.cat(d) if d[0] is not None else None for d in zip(*draws))
        idx = idx.to(device)
        xb = apply_augmentation(x[idx], shifts, flips)
        xb = (xb.contiguous(memory_format=layout) if execution.channels_last else xb).view(k, batch, *x.shape[1:])
        yb = y[idx].view(k, batch)
        with autocast(device, cell["precision"], fp16=step == 0 and cell["perturbation"] == "fp16_first_batch"):
            logits = forward(xb)
        losses = F.cross_entropy(
            logits.flatten(0, 1).float(), yb.flatten(), label_smoothing=cell["label_smoothing"], reduction="none"
        ).view(k, -1)
        per_run = losses.mean(1)
        optimizer.zero_grad(set_to_none=True)
        per_run.sum().backward()
        optimizer.step()
        scheduler.step()
        diverged = torch.where((diverged < 0) & ~torch.isfinite(per_run.detach()), step, diverged)
        if step >= total - steps_per_epoch:  # statistics over the last epoch
            loss_sum += losses.detach().sum(1)
            correct += (logits.detach().argmax(-1) == yb).sum(1)
            seen += yb.shape[1]
    return (loss_sum / seen).cpu(), (correct / seen).cpu(), diverged.cpu()


@torch.no_grad()
def evaluate(stack: LoopStack | VmapStack, sets: dict, precision: str = "fp32",
             tta: str = "none") -> list[dict[tuple[str, int], EvalResult]]:  # fmt: skip
    """Per-example predictions and true-class probabilities of the K models on every evaluation set.

    With tta="flip" the logits are the mean over each image and its mirror (airbench's test-time flip).
    """
    stack.train(False)

    def logits(xc: torch.Tensor) -> torch.Tensor:
        with autocast(xc.device, precision):
            out = stack(xc, shared=True).float()
            return (out + stack(xc.flip(-1), shared=True).float()) / 2 if tta == "flip" else out

    out = None
    for key, (x, y) in sets.items():
        chunk = EVAL_CHUNK.get(x.device.type, EVAL_CHUNK["cuda"])
        probs = torch.cat([logits(xc).softmax(-1) for xc in x.split(chunk)], dim=1)
        pred = probs.argmax(-1)
        p_true = probs.gather(-1, y.expand(len(probs), -1)[..., None]).squeeze(-1)
        correct = pred == y
        acc = correct.double().mean(1).cpu().tolist()  # float64: exactly the mean of `correct`
        pred, p_true, correct = pred.to(torch.uint8).cpu().numpy(), p_true.half().cpu().numpy(), correct.cpu().numpy()
        out = out or [{} for _ in range(len(probs))]
        for r in range(len(probs)):
            out[r][key] = EvalResult(pred[r], p_true[r], correct[r], acc[r])
    return out


# Largest image (H*W) for which vmap beats the loop on a CPU. Measured with benchmarks/throughput.py, cnn
# width 8, 1 thread: 8x8 digits, vmap/loop = 1.71 at K=8 and 1.47 at K=32 (per-step Python overhead
# dominates tiny nets); 32x32 images, 0.23 at K=8 and 0.17 at K=32 (the batched convolutions lose).
CPU_VMAP_MAX_PIXELS = 16 * 16


def choose_engine(engine: str, device: torch.device, pixels: int = 32 * 32, k: int = 1) -> str:
    """'auto' picks by measurement, never by a timing taken now (that would make results depend on load):
    vmap on CUDA; on a CPU, vmap for shards of 8+ runs on small images and the loop otherwise."""
    if engine == "auto":
        small_on_cpu = pixels <= CPU_VMAP_MAX_PIXELS and k >= 8
        return "vmap" if device.type == "cuda" or small_on_cpu else "loop"
    if engine not in ("loop", "vmap"):
        raise ValueError(f"unknown engine {engine!r}; choose auto, loop or vmap")
    return engine


def train_shard(
    cells: list[dict],
    data: Dataset,
    sets: dict,
    execution: Execution = Execution(),
    progress: Callable[[RunResult], None] | None = None,
) -> list[RunResult]:
    """Train and evaluate a shard's cells (which must differ only in seeds) on `data`'s device."""
    shared = {k: v for k, v in cells[0].items() if k not in SEED_KEYS}
    for c in cells:
        if {k: v for k, v in c.items() if k not in SEED_KEYS} != shared:
            raise ValueError("a shard's cells must differ only in their seeds")
    device = data.x_train.device
    x, y = training_set(data, cells[0])
    execution = execution.resolved(device, x.shape[-2] * x.shape[-1], len(cells))
    layout = memory_format(execution)
    sets = {key: (xs.contiguous(memory_format=layout), ys) for key, (xs, ys) in sets.items()}
    results = []
    for group in stack_groups(cells, execution):
        start = time.perf_counter()
        stack = build_stack(group, x, execution)
        loss, acc, diverged = fit(stack, group, x, y, execution)
        evals = evaluate(stack, sets, shared["precision"], shared["tta"])
        seconds = (time.perf_counter() - start) / len(group)
        for r, c in enumerate(group):
            step = int(diverged[r])
            if step >= 0:  # a diverged run has no meaningful accuracy; its predictions are kept as made
                evals[r] = {key: replace(e, acc=float("nan")) for key, e in evals[r].items()}
            result = RunResult(c, float(loss[r]), float(acc[r]), step, seconds, evals[r])
            results.append(result)
            if progress:
                progress(result)
    return results
