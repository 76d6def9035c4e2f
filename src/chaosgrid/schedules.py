"""Learning-rate schedules: a multiplier of the peak lr at each step, and the steps worth a snapshot.

Each schedule is a function (cell, total steps) -> Schedule, registered in SCHEDULES under the name a cell's
`schedule` takes. Linear warm-up from 0 over `warmup` x total steps comes first for every schedule; `step`
counts optimizer steps from 0, and a snapshot step s means "after s steps".

- constant, linear, cosine, step (x0.1 at 50% and 75%): single-model schedules; no snapshots. Their decay
  spans the steps after warm-up, or `decay_length` x total steps counted from the end of warm-up when set
  (Geiping et al.'s "cosine-4000" over 3,000 steps: 1.333, ending at 27% of the peak lr).
- garipov: Garipov et al.'s single-model schedule (dnn-mode-connectivity's `learning_rate_schedule`): the
  peak lr for the first half, then linearly down to 1% of it at 90%, then 1%: what independent runs and FGE's
  start train on. As in the authors' `train.py`, the lr is set once per epoch, and epoch e (counted from 1)
  of E trains at the factor of e/E (so the decay's first epoch is already below the peak).
- cyclic_cosine: Huang et al.'s snapshot ensembles: `cycles` cosine cycles of ceil(T/M) steps, restarted
  every iteration count, a snapshot at each cycle end.
- fge: Garipov et al.'s fast geometric ensembling: `cycles` cycles of c steps, lr going linearly
  lr -> lr_min -> lr (alpha_1 -> alpha_2 -> alpha_1, t(i) = (i mod c + 1)/c), a member at each low point.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Schedule:
    factor: Callable[[int], float]  # multiplier of the peak lr for step `step` (0-based)
    snapshots: tuple[int, ...] = ()  # steps after which the schedule has a natural snapshot


def _warm_steps(cell: dict, total: int) -> int:
    return max(1, round(cell["warmup"] * total)) if cell["warmup"] > 0 else 0


def _single(decay: Callable[[float], float]) -> Callable[[dict, int], Schedule]:
    """A single-model schedule: warm-up, then `decay(progress)` with progress going 0 -> 1."""

    def make(cell: dict, total: int) -> Schedule:
        warm = _warm_steps(cell, total)
        span = round(cell["decay_length"] * total) if cell["decay_length"] > 0 else total - warm

        def factor(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return decay(min(1.0, (step - warm) / max(1, span)))

        return Schedule(factor)

    return make


def _garipov_factor(alpha: float) -> float:
    return 1.0 if alpha <= 0.5 else max(0.01, 1 - 0.99 * (alpha - 0.5) / 0.4)


def garipov(cell: dict, total: int) -> Schedule:
    warm = _warm_steps(cell, total)
    span = round(cell["decay_length"] * total) if cell["decay_length"] > 0 else total - warm
    per_epoch = max(1, round(total / cell["epochs"]))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        epochs_done = ((step - warm) // per_epoch + 1) * per_epoch  # at the end of the epoch being trained
        return _garipov_factor(min(1.0, epochs_done / max(1, span)))

    return Schedule(factor)


def cyclic_cosine(cell: dict, total: int) -> Schedule:
    warm = _warm_steps(cell, total)
    length = math.ceil(max(1, total - warm) / cell["cycles"])

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * ((step - warm) % length) / length))

    ends = [min(total, warm + length * (j + 1)) for j in range(cell["cycles"])]
    return Schedule(factor, tuple(sorted(set(ends))))


def fge(cell: dict, total: int) -> Schedule:
    warm = _warm_steps(cell, total)
    length = max(2, (total - warm) // cell["cycles"])
    low = cell["lr_min"] / cell["lr"]

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        t = ((step - warm) % length + 1) / length
        return (1 - 2 * t) + 2 * t * low if t < 0.5 else (2 * t - 1) + (2 - 2 * t) * low

    lows = [warm + j * length + length // 2 for j in range(cell["cycles"])]
    return Schedule(factor, tuple(s for s in lows if s <= total))


SCHEDULES: dict[str, Callable[[dict, int], Schedule]] = {
    "constant": _single(lambda progress: 1.0),
    "linear": _single(lambda progress: 1 - progress),
    "cosine": _single(lambda progress: 0.5 * (1 + math.cos(math.pi * progress))),
    "step": _single(lambda progress: 0.1 ** ((progress >= 0.5) + (progress >= 0.75))),
    "garipov": garipov,
    "cyclic_cosine": cyclic_cosine,
    "fge": fge,
}


def schedule(cell: dict, total: int) -> Schedule:
    """The cell's schedule over `total` optimizer steps."""
    return SCHEDULES[cell["schedule"]](cell, total)
