"""Your own training code: a `trainer` trains each run of a shard instead of chaosgrid's recipe.

The contract, both forms:
- in the shard's process, `package.module:function` is called as `function(params, data)`: `params` is the
  run's full cell (its seeds, every parameter, the study's own keys), `data` a `TrainerData` (the normalised
  training set, after `data_fraction` and label noise, and every evaluation set, as numpy arrays);
- as a command (`{command: "python train.py --lr {lr} --out {out}"}`), the template is split into words
  first and each word filled from the same params plus `{data}` (an .npz of the same arrays: x_train,
  y_train, x.<set>, y.<set>), `{out}` and `{num_classes}`: a value is always one argument, never read by a
  shell. It writes an .npz to `{out}`.

It returns (or writes) class probabilities or logits for every evaluation set, examples x classes:
`{"probabilities": {set: array}}` or `{"logits": {set: array}}`, and optionally `"history"`: one dict per
epoch with `train_loss` and `train_acc` (in the .npz: arrays `probabilities.<set>` or `logits.<set>`, and
`history.train_loss`, `history.train_acc`). Sets are named `clean` (the test set) and `<shift>~<severity>`.

chaosgrid passes the seeds; using them is the trainer's part (`chaosgrid check-trainer` runs a run twice).
A broken contract (a missing set, a wrong shape, probabilities that are not probabilities, an exception,
a failed command) fails the job naming it, before anything is written; non-finite logits or training
loss mark the run diverged, as built-in runs are.
"""

from __future__ import annotations

import shlex
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from chaosgrid import plugins
from chaosgrid.cells import cell_id
from chaosgrid.evalsets import eval_name
from chaosgrid.evaluation import EvalResult, RunResult, eval_results
from chaosgrid.train import training_set


class TrainerError(RuntimeError):
    """A trainer broke its contract; the message says which part."""


@dataclass
class TrainerData:
    """What a trainer trains and evaluates on, as numpy arrays on the CPU (images N x C x H x W, 1-D signals
    N x C x 1 x L), normalised by the training set's statistics."""

    x_train: np.ndarray
    y_train: np.ndarray
    sets: dict[str, tuple[np.ndarray, np.ndarray]]  # evaluation set name -> (x, y); "clean": the test set
    num_classes: int


def train_runs(
    cells: list[dict],
    data,
    sets: dict,
    progress: Callable[[RunResult], None] | None = None,
    probabilities: bool = False,
) -> list[RunResult]:
    """Train and evaluate a shard's runs with their trainer, one after another."""
    x, y = training_set(data, cells[0])
    arrays = TrainerData(
        x.cpu().numpy(),
        y.cpu().numpy(),
        {eval_name(*k): (xs.cpu().numpy(), ys.cpu().numpy()) for k, (xs, ys) in sets.items()},
        data.num_classes,
    )
    results = []
    with tempfile.TemporaryDirectory(prefix="chaosgrid-trainer-") as scratch:
        for cell in cells:
            begin = time.perf_counter()
            output = call(cell, arrays, Path(scratch))
            result = run_result(
                cell, output, sets, arrays.num_classes, time.perf_counter() - begin, probabilities
            )
            results.append(result)
            if progress:
                progress(result)
    return results


def call(cell: dict, data: TrainerData, scratch: Path) -> dict:
    """Run the cell's trainer once; its output as {"probabilities" or "logits": {set: array}, "history": [...]}."""
    trainer = cell["trainer"]
    if trainer.startswith("command:"):
        return _command(cell, data, scratch)
    function = plugins.load(trainer)
    try:
        output = function(dict(cell), data)
    except Exception as err:
        raise TrainerError(
            f"trainer {trainer} raised {type(err).__name__}: {err} (run {cell_id(cell)})"
        ) from err
    if not isinstance(output, dict):
        raise TrainerError(
            f"trainer {trainer} returned {type(output).__name__}; it must return a dict with "
            f"'probabilities' or 'logits'"
        )
    return output


def _command(cell: dict, data: TrainerData, scratch: Path) -> dict:
    data_path, out = scratch / "data.npz", scratch / f"{cell_id(cell)}.npz"
    if not data_path.exists():
        sets = {f"{axis}.{name}": a for name, (x, y) in data.sets.items() for axis, a in (("x", x), ("y", y))}
        np.savez(data_path, x_train=data.x_train, y_train=data.y_train, **sets)
    values = {**cell, "data": str(data_path), "out": str(out), "num_classes": data.num_classes}
    template = cell["trainer"].removeprefix("command:")
    try:
        argv = [word.format_map(values) for word in shlex.split(template)]
    except (KeyError, ValueError) as err:
        raise TrainerError(
            f"trainer command {template!r}: no value for {err} (placeholders name parameters, the "
            f"study's own keys, data, out and num_classes)"
        ) from err
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise TrainerError(
            f"trainer command {argv[0]} exited with {done.returncode} (run {cell_id(cell)}): "
            f"{done.stderr.strip()[-2000:]}"
        )
    if not out.exists():
        raise TrainerError(f"trainer command {argv[0]} wrote no {{out}} file (run {cell_id(cell)})")
    with np.load(out) as npz:
        arrays = {key: npz[key] for key in npz.files}
    kind = "logits" if any(k.startswith("logits.") for k in arrays) else "probabilities"
    output: dict = {kind: {k.partition(".")[2]: v for k, v in arrays.items() if k.startswith(f"{kind}.")}}
    if "history.train_loss" in arrays:
        accs = arrays.get("history.train_acc", np.full_like(arrays["history.train_loss"], np.nan))
        output["history"] = [
            {"train_loss": float(loss), "train_acc": float(acc)}
            for loss, acc in zip(arrays["history.train_loss"], accs, strict=True)
        ]
    return output


def run_result(
    cell: dict, output: dict, sets: dict, num_classes: int, seconds: float, probabilities: bool = False
) -> RunResult:
    """A RunResult from a trainer's output, checked against the contract (see the module docstring)."""
    trainer = cell["trainer"]
    kinds = [k for k in ("probabilities", "logits") if k in output]
    if len(kinds) != 1:
        raise TrainerError(
            f"trainer {trainer} must give either 'probabilities' or 'logits', got {sorted(output)}"
        )
    given, diverged = output[kinds[0]], False
    evals: dict[tuple[str, int], EvalResult] = {}
    for key, (_, y) in sets.items():
        name = eval_name(*key)
        if name not in given:
            raise TrainerError(
                f"trainer {trainer} gave no {kinds[0]} for evaluation set {name!r}; it must give "
                f"every set: {', '.join(eval_name(*k) for k in sets)}"
            )
        values = torch.as_tensor(np.asarray(given[name], dtype=np.float64))
        if values.shape != (len(y), num_classes):
            raise TrainerError(
                f"trainer {trainer}: {kinds[0]} for {name!r} have shape {tuple(values.shape)}; "
                f"expected ({len(y)}, {num_classes}): examples x classes"
            )
        if kinds[0] == "logits":
            diverged |= not bool(torch.isfinite(values).all())
            values = values.nan_to_num(0.0, 0.0, 0.0).softmax(-1)
        elif not (
            torch.isfinite(values).all()
            and (values >= 0).all()
            and torch.allclose(values.sum(1), torch.ones(1, dtype=values.dtype), atol=1e-3)
        ):
            raise TrainerError(
                f"trainer {trainer}: probabilities for {name!r} are not probabilities (NaN, "
                f"negative, or rows not summing to 1); return 'logits' instead for raw scores"
            )
        evals[key] = eval_results(values[None], y.cpu(), probabilities)[0]
    epochs = output.get("history", [])
    diverged |= any("train_loss" in h and not np.isfinite(h["train_loss"]) for h in epochs)
    history = [
        {
            "epoch": float(e + 1),
            "step": e + 1,
            "current_lr": float("nan"),
            "train_loss": float(h.get("train_loss", np.nan)),
            "train_acc": float(h.get("train_acc", np.nan)),
        }
        for e, h in enumerate(epochs)
    ]
    if diverged:  # as for built-in runs: predictions kept as made, no meaningful accuracy
        evals = {key: replace(e, acc=float("nan")) for key, e in evals.items()}
    last = history[-1] if history else {"train_loss": float("nan"), "train_acc": float("nan")}
    return RunResult(
        cell, last["train_loss"], last["train_acc"], 0 if diverged else -1, seconds, evals, history=history
    )
