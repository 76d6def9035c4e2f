"""A study's `checkpoints` declaration, in one place: the steps a shard evaluates (and keeps weights at).

- `final`: the last step only;
- `snapshots`: the schedule's snapshot steps (its cycles' ends) and the last;
- `every:N` (or the number N): every N epochs, and the last step;
- `evenly:N`: N evaluations evenly spaced in steps (for rows of very different lengths), the last one included.

The job and the footprint's estimates (`training_steps`, `steps`: what a run evaluates and keeps), planning
(`epochs`: what `init_from` may start from), the check of a study's declaration (`canonical`) and the lookup
of a kept checkpoint by epoch (`step_at`) all read it here, so they cannot disagree.
Torch-free: planning imports it.
"""

from __future__ import annotations

import math

from chaosgrid.cells import GridError, format_value


def canonical(checkpoints: object) -> str:
    """The declaration's text (a number N means every:N), or GridError naming what is wrong."""
    if isinstance(checkpoints, (int, float)) and not isinstance(checkpoints, bool):
        checkpoints = f"every:{format_value(float(checkpoints))}"
    text = str(checkpoints)
    if text in ("final", "snapshots"):
        return text
    kind, _, number = text.partition(":")
    try:
        ok = (kind == "every" and float(number) > 0) or (kind == "evenly" and int(number) >= 1)
    except ValueError:
        ok = False
    if not ok:
        raise GridError(
            f"checkpoints is {checkpoints!r}; choose final, snapshots, a positive number of epochs "
            f"or evenly:<count>"
        )
    return text


def shortened(checkpoints: str, factor: float) -> str:
    """The declaration for a training `factor` times shorter: `every:N` keeps its count of checkpoints
    (every N/factor epochs); the others are relative to the run already."""
    kind, _, number = checkpoints.partition(":")
    return f"every:{format_value(float(number) / factor)}" if kind == "every" else checkpoints


def training_steps(cell: dict, n: int) -> tuple[int, int, int]:
    """(batch, steps per epoch, steps) of a run of `cell` on `n` training examples: a batch larger than the
    set is the whole set; `drop_last` leaves out each epoch's partial batch; at least one step."""
    batch = min(cell["batch_size"], n)
    per_epoch = n // batch if cell["drop_last"] else math.ceil(n / batch)
    return batch, per_epoch, max(1, round(cell["epochs"] * per_epoch))


def steps(checkpoints: str, total: int, steps_per_epoch: int, snapshots: tuple[int, ...] = ()) -> list[int]:
    """The steps after which a shard of `total` steps evaluates its runs (`snapshots`: the schedule's)."""
    found = {total}
    kind, _, number = checkpoints.partition(":")
    if kind == "snapshots":
        found.update(snapshots)
    elif kind == "evenly":
        found.update(round(j * total / int(number)) for j in range(1, int(number)))
    elif kind == "every":
        every = float(number) * steps_per_epoch
        found.update(round(j * every) for j in range(1, math.ceil(total / every)))
    return sorted(s for s in found if 0 < s <= total)


def epochs(checkpoints: str, epochs: float) -> list[float] | None:
    """The epochs of the checkpoints a shard keeps (`steps` in epochs); None for `snapshots`, which only the
    schedule knows."""
    kind, _, number = checkpoints.partition(":")
    if kind == "snapshots":
        return None
    if kind == "every":
        every = float(number)
        return [j * every for j in range(1, math.ceil(epochs / every))] + [epochs]
    if kind == "evenly":
        return [epochs * j / int(number) for j in range(1, int(number))] + [epochs]
    return [epochs]


def step_at(run: dict, epoch: float) -> int:
    """The step of a run's kept checkpoint at `epoch` (0: the final one), in its weights file's entry (its
    epochs, steps and weights by step), or ValueError listing those kept."""
    steps_per_epoch = run["steps"] / run["epochs"]
    step = round(epoch * steps_per_epoch) if epoch else max(run["weights"])
    if step not in run["weights"]:
        kept = ", ".join(format_value(round(s / steps_per_epoch, 3)) for s in sorted(run["weights"]))
        raise ValueError(
            f"no checkpoint kept at epoch {format_value(epoch)} (kept: epochs {kept}); add it to "
            f"the source study's checkpoints"
        )
    return step
