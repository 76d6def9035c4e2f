"""What one training step does, for K runs at once, whichever engine holds them.

A step, read top to bottom (`fit`):
1. draw each run's batch (its order seed, its `batch_order`) and augmentation (its aug seed);
2. gradient: split the batch into micro-batches of `micro_batch` examples; each micro-batch's loss is scaled
   by its share of the batch, so the accumulated gradient is the true mean over the batch (full-batch GD is a
   batch of the whole training set). BatchNorm sees each micro-batch in train mode, as in Geiping et al.
   With `grad_penalty` each micro-batch's gradient g_k becomes g_k + (lr/4)·H_k(alpha·g_k): the authors'
   forward finite difference (`penalty_method: fd`) or double backprop (`autograd`, the check);
3. SAM (`optimizer: sam`): ascend each run by rho·g/‖g‖, take the gradient there, return;
4. clip each run's gradient to `grad_clip` (global L2 norm per run), then gradient noise
   (additive g + σξ, multiplicative g ⊙ (1 + σξ)), then the optimizer's step (`chaosgrid.optimizers`,
   weight decay inside it), each run with its own lr, momentum and weight decay;
5. the schedule's next lr; checkpoints, history and progress lines.
Every per-run operation goes through `chaosgrid.engine` (one vectorised call for all K runs; no norm
over runs together). A stack's runs share every parameter but their seeds and the optimizer's per-run
numbers (`cells.PER_RUN`): grid points that differ only in those train as one stack.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from chaosgrid import engine, optimizers, schedules
from chaosgrid.batches import Batches
from chaosgrid.cells import SEED_KEYS
from chaosgrid.checkpoints import steps as checkpoint_steps
from chaosgrid.checkpoints import training_steps
from chaosgrid.sampling import derive_seed


def autocast(device: torch.device, precision: str, fp16: bool = False) -> torch.autocast:
    """Autocast context of a forward pass: bf16 when the cell asks for it, fp16 for the one perturbed batch."""
    dtype = torch.float16 if fp16 else torch.bfloat16
    return torch.autocast(device.type, dtype=dtype, enabled=fp16 or precision == "bf16")


class Preempted(Exception):
    """A fit saved its state when asked to stop (SIGTERM, SIGUSR1) and stopped: a retry resumes from it."""


@dataclass
class Saving:
    """How a fit keeps what a retry resumes from: `save(state)` every `every` seconds and when `requested()`
    (a signal: the fit then raises Preempted), and `state`, what an earlier attempt saved, to start from.
    The state is every run's weights and optimizer state, the step, the statistics and history so far and
    torch's RNG; batch orders, augmentations and gradient noise are replayed from their seeds."""

    save: Callable[[dict], None]
    every: float
    requested: Callable[[], bool] = lambda: False
    state: dict | None = None


@dataclass
class FitResult:
    train_loss: torch.Tensor  # (K,) mean over the last epoch's batches (augmented, as trained)
    train_acc: torch.Tensor  # (K,)
    diverged_step: torch.Tensor  # (K,) first step with a non-finite loss; -1 if none
    clipped: torch.Tensor  # (K,) fraction of steps whose gradient was clipped
    history: list[dict]  # per epoch: epoch, step, current_lr (K,), train_loss (K,), train_acc (K,)


class Step:
    """The gradient of one optimizer step for all K runs: micro-batches, penalty, SAM, clip and noise."""

    def __init__(
        self,
        stack: engine.Stack,
        cell: dict,
        forward: Callable,
        noise_seeds: torch.Tensor,
        regularizer: Callable[[], torch.Tensor] | None = None,
    ):
        self.stack, self.cell, self.forward, self.noise_seeds = stack, cell, forward, noise_seeds
        self.regularizer = regularizer
        self.fp16 = False

    def losses(self, xb: torch.Tensor, yb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(K, m) per-example losses (plus the regularizer's (K,) term, so a batch's mean loss carries it
        once) and (K, m, classes) logits of a micro-batch."""
        with autocast(xb.device, self.cell["precision"], fp16=self.fp16):
            logits = self.forward(xb)
        # autocast's bf16/fp16 logits upcast
        wide = logits.to(torch.promote_types(logits.dtype, torch.float32))
        losses = F.cross_entropy(
            wide.flatten(0, 1), yb.flatten(), label_smoothing=self.cell["label_smoothing"], reduction="none"
        )
        losses = losses.view(yb.shape)
        if self.regularizer:
            losses = losses + self.regularizer()[:, None]
        return losses, logits

    def accumulate(
        self, micro_batches: list, lr: torch.Tensor, record: Callable | None = None
    ) -> list[torch.Tensor]:
        """Gradients (like `params`) of the batch's mean loss, accumulated over its micro-batches."""
        params = self.stack.params
        for p in params:
            p.grad = None
        total = sum(yb.shape[1] for _, yb in micro_batches)
        for xb, yb in micro_batches:
            weight = yb.shape[1] / total
            if self.cell["grad_penalty"] > 0:
                grads, losses, logits = self.penalized(xb, yb, lr)
                for p, g in zip(params, grads, strict=True):
                    p.grad = g * weight if p.grad is None else p.grad.add_(g, alpha=weight)
            else:
                losses, logits = self.losses(xb, yb)
                loss = losses.mean(1).sum()
                (loss if weight == 1 else loss * weight).backward()
            if record:
                record(losses.detach(), logits.detach(), yb)
        return [p.grad for p in params]

    def penalized(self, xb, yb, lr):
        """g + (lr/4)·H(alpha·g) for one micro-batch (Geiping et al.'s gradient-norm penalty), per run (each
        with its own lr, (K,))."""
        params, alpha = self.stack.params, self.cell["grad_penalty"]
        lr = lr.to(params[0].dtype)
        losses, logits = self.losses(xb, yb)
        if self.cell["penalty_method"] == "autograd":
            grads = torch.autograd.grad(losses.mean(1).sum(), params, create_graph=True)
            hv = torch.autograd.grad(grads, params, grad_outputs=[alpha * g.detach() for g in grads])
            quarter = [self.stack.per_run(lr / 4, i) for i in range(len(params))]
            return [g.detach() + q * h for g, q, h in zip(grads, quarter, hv, strict=True)], losses, logits
        grads = torch.autograd.grad(losses.mean(1).sum(), params)
        # step length eps/‖alpha·g‖ per run: the perturbed point is exactly penalty_eps away (the "DARTS rule")
        step = self.cell["penalty_eps"] / (alpha * engine.norms(self.stack, list(grads))).clamp_min(1e-12)
        with torch.no_grad():
            saved = [p.detach().clone() for p in params]
            engine.add_(self.stack, params, list(grads), alpha * step)
        shifted = torch.autograd.grad(self.losses(xb, yb)[0].mean(1).sum(), params)
        with torch.no_grad():
            for p, s in zip(params, saved, strict=True):
                p.copy_(s)
        scale = lr / 4 / step  # (g' - g)/step ≈ H(alpha·g), times lr/4
        out = [g + (g2 - g) * self.stack.per_run(scale, i) for i, (g, g2) in enumerate(zip(grads, shifted))]
        return out, losses, logits

    def __call__(self, micro_batches: list, lr: torch.Tensor, step: int, record: Callable) -> torch.Tensor:
        """Leave the step's final gradient in `params[i].grad` (`lr`: each run's, (K,)); return which runs
        were clipped (K,)."""
        stack, cell = self.stack, self.cell
        grads = self.accumulate(micro_batches, lr, record)
        if cell["optimizer"] == "sam":
            ascent = cell["sam_rho"] / (engine.norms(stack, grads) + 1e-12)
            with torch.no_grad():
                engine.add_(stack, stack.params, grads, ascent)
                offsets = [g * stack.per_run(ascent, i) for i, g in enumerate(grads)]
            grads = self.accumulate(micro_batches, lr)
            with torch.no_grad():
                for p, e in zip(stack.params, offsets, strict=True):
                    p.sub_(e)
        clipped = torch.zeros(stack.k, dtype=torch.bool, device=self.noise_seeds.device)
        if cell["grad_clip"] > 0:
            norm = engine.norms(stack, grads)
            clipped = norm > cell["grad_clip"]
            engine.scale_(stack, grads, torch.where(clipped, cell["grad_clip"] / (norm + 1e-6), 1.0))
        if cell["noise_additive"] > 0:
            for g, z in zip(grads, engine.counter_normal(stack, self.noise_seeds, 2 * step), strict=True):
                g.add_(z, alpha=cell["noise_additive"])
        if cell["noise_multiplicative"] > 0:
            for g, z in zip(grads, engine.counter_normal(stack, self.noise_seeds, 2 * step + 1), strict=True):
                g.mul_(1 + cell["noise_multiplicative"] * z)
        return clipped


class RunStats:
    """Per-run statistics of a fit, kept as tensors so the loop never waits for the device: loss sum,
    correct and seen over the current epoch and over the last epoch's batches (float64, so a sum does not
    depend on how batches were split into micro-batches), the first non-finite step, clipping, history."""

    def __init__(self, k: int, device: torch.device, total: int, steps_per_epoch: int):
        self.total, self.steps_per_epoch = total, steps_per_epoch
        self.epoch = torch.zeros(3, k, dtype=torch.float64, device=device)
        self.window = torch.zeros(3, k, dtype=torch.float64, device=device)
        self.diverged = torch.full((k,), -1, dtype=torch.long, device=device)
        self.clipped = torch.zeros(k, device=device)
        self.history: list[dict] = []
        self.in_window = False

    def record(self, losses: torch.Tensor, logits: torch.Tensor, yb: torch.Tensor) -> None:
        """Add a micro-batch's (K, m) losses and logits."""
        correct = (logits.argmax(-1) == yb).sum(1).float()
        stats = torch.stack([losses.sum(1), correct, torch.full_like(correct, yb.shape[1])])
        self.epoch.add_(stats)
        if self.in_window:
            self.window.add_(stats)

    def end_step(self, step: int, done: int, lr: torch.Tensor, clipped: torch.Tensor) -> None:
        """After step `step` (`done` steps taken): divergence (a non-finite loss sum), clipping, history."""
        self.clipped += clipped
        self.diverged = torch.where((self.diverged < 0) & ~torch.isfinite(self.epoch[0]), step, self.diverged)
        if done % self.steps_per_epoch == 0 or done == self.total:
            mean = self.epoch[:2] / self.epoch[2]
            self.history.append(
                {
                    "epoch": done / self.steps_per_epoch,
                    "step": done,
                    "current_lr": lr,
                    "train_loss": mean[0],
                    "train_acc": mean[1],
                }
            )
            self.epoch.zero_()

    STATE = ("epoch", "window", "diverged", "clipped", "history")

    def state(self) -> dict:
        """What a resumed fit needs of the statistics so far."""
        return {name: getattr(self, name) for name in self.STATE}

    def restore(self, state: dict) -> None:
        for name in self.STATE:
            setattr(self, name, state[name])

    def mean_loss(self) -> float:
        """The mean loss over runs of the epoch so far (of the last one at an epoch's end): a device sync."""
        loss = self.history[-1]["train_loss"] if self.epoch[2, 0] == 0 else self.epoch[0] / self.epoch[2]
        return float(loss.mean())

    def result(self) -> FitResult:
        history = [
            {**h, **{key: h[key].cpu() for key in ("current_lr", "train_loss", "train_acc")}}
            for h in self.history
        ]
        return FitResult(
            (self.window[0] / self.window[2]).cpu(),
            (self.window[1] / self.window[2]).cpu(),
            self.diverged.cpu(),
            (self.clipped / self.total).cpu(),
            history,
        )


class Rates:
    """Each run's learning rate at a step, (K,) float64: its own lr times its schedule's factor, the product
    torch's LambdaLR takes. Runs of one grid point share a schedule, computed once per point."""

    def __init__(self, cells: list[dict], total: int, device: torch.device):
        points: dict[tuple, dict] = {}  # a run's parameters but its seeds -> its first cell
        for c in cells:
            points.setdefault(_point(c), c)
        index = {point: i for i, point in enumerate(points)}
        self.point_of = torch.tensor([index[_point(c)] for c in cells], device=device)
        self.schedules = [(c["lr"], schedules.schedule(c, total)) for c in points.values()]
        self.snapshots = self.schedules[0][1].snapshots  # the same for every point (cycles, not the lr)
        self.device = device

    def at(self, step: int) -> torch.Tensor:
        lrs = torch.tensor([lr * s.factor(step) for lr, s in self.schedules], dtype=torch.float64)
        return lrs.to(self.device)[self.point_of]


def _point(cell: dict) -> tuple:
    return tuple(v for k, v in sorted(cell.items()) if k not in SEED_KEYS)


def fit(
    stack: engine.Stack,
    cells: list[dict],
    x: torch.Tensor,
    y: torch.Tensor,
    execution: engine.Execution = engine.DEFAULT_EXECUTION,
    checkpoints: str = "final",
    on_checkpoint: Callable[[int], None] | None = None,
    log: Callable[[str], None] | None = None,
    progress_every: float = 60.0,
    before_step: Callable[[int], None] | None = None,
    regularizer: Callable[[], torch.Tensor] | None = None,
    saving: Saving | None = None,
) -> FitResult:
    """Train the stack's K models, each on its own batch order, augmentation and gradient noise.

    Curves train through the same loop: `before_step(step)` runs before each step (a curve draws its t) and
    `regularizer()` adds a (K,) term to every run's loss. `on_checkpoint(steps)` is called after each
    checkpoint step. Nothing waits for the device inside the loop but a progress line (one per
    `progress_every` seconds at most). With `saving`, the fit saves its state now and then and resumes from a
    saved one, bit-identical to an uninterrupted fit (docs/how-a-shard-trains.md).
    """
    cell, n, k = cells[0], len(y), len(cells)
    batch_size, steps_per_epoch, total = training_steps(cell, n)
    rates = Rates(cells, total, x.device)
    optimizer = optimizers.Optimizer(stack, cells)
    batches = Batches(cells, x, y, batch_size, execution)
    # gradient noise follows the order seed (it stands for minibatch noise); < 2**32 for the counter RNG
    noise_seeds = torch.tensor(
        [derive_seed("noise", c["order_seed"]) % 2**32 for c in cells], device=x.device
    )
    forward = torch.compile(stack.__call__) if execution.compile else stack
    step_fn = Step(stack, cell, forward, noise_seeds, regularizer)
    stats = RunStats(k, x.device, total, steps_per_epoch)
    saves = set(checkpoint_steps(checkpoints, total, steps_per_epoch, rates.snapshots))
    first = 0
    if saving and saving.state:
        first = saving.state["step"]
        optimizer.load_state_dict(saving.state["optimizer"])
        stats.restore(saving.state["stats"])
        torch.set_rng_state(saving.state["rng"])
        batches.skip(first)
    started = last_line = last_save = time.perf_counter()

    stack.train(True)
    for step in range(first, total):
        if before_step:
            before_step(step)
        stack.draws_from(step)
        micro_batches = batches.next()
        stats.in_window = step >= total - steps_per_epoch
        step_fn.fp16 = step == 0 and cell["perturbation"] == "fp16_first_batch"
        lr = rates.at(step)
        clipped = step_fn(micro_batches, lr, step, stats.record)
        optimizer.step(lr)
        done = step + 1
        stats.end_step(step, done, lr, clipped)
        if done in saves and on_checkpoint:
            on_checkpoint(done)
            stack.train(True)
        if log and time.perf_counter() - last_line >= progress_every:
            last_line = time.perf_counter()
            elapsed = last_line - started
            log(
                f"  epoch {done / steps_per_epoch:.1f}/{cell['epochs']:g}: mean train loss {stats.mean_loss():.4f} "
                f"over {k} runs, {elapsed:.0f} s elapsed, ETA {elapsed * (total - done) / (done - first):.0f} s"
            )
        if (
            saving
            and done < total
            and (saving.requested() or time.perf_counter() - last_save >= saving.every)
        ):
            saving.save(
                {
                    "step": done,
                    "stack": stack.state_dicts(),
                    "optimizer": optimizer.state_dict(),
                    "stats": stats.state(),
                    "rng": torch.get_rng_state(),
                }
            )
            last_save = time.perf_counter()
            if saving.requested():
                raise Preempted(f"state saved after step {done} of {total}")
    return stats.result()
