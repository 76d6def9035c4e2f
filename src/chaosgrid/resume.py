"""A shard's saved state, so that a stopped or killed job's retry resumes bit-identically (`Resume`): tensors
and plain values only, read with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from chaosgrid.evaluation import EvalResult, RunResult
from chaosgrid.store import load_torch_file, write_atomically


class Resume:
    """A shard's saved state (`recipe.Saving`): where it lives (outside the job's declared outputs, which
    Snakemake deletes when a job fails), the spec it belongs to, how often to save, and what an earlier
    attempt saved. Besides the running fit, the state holds the runs of the shard's groups already trained
    and the checkpoint evaluations so far, as tensors and plain values only: it is read with
    `weights_only=True`, so a file planted in a shared results folder can run no code. A state saved for
    another spec or by another layout is ignored and a corrupt or refused one reported; the shard then
    starts over."""

    LAYOUT = 3  # what `write` stores (3: chaosgrid's own optimizer state); another layout starts over

    def __init__(self, path: str, spec: str, every: float, log: Callable[[str], None] = print):
        self.path, self.spec, self.every, self.requested = Path(path), spec, every, False
        self.saved = None
        if self.path.exists():
            try:
                saved = load_torch_file(self.path, "starting over", map_location="cpu")
            except ValueError as err:
                log(f"{err}")
                return
            if not isinstance(saved, dict) or saved.get("spec") != spec:
                log(f"{self.path} was saved for another spec: ignored, starting over")
                return
            if saved.get("layout") != self.LAYOUT:
                log(
                    f"{self.path} was saved by another version of chaosgrid (layout {saved.get('layout', 1)}, "
                    f"this one reads {self.LAYOUT}): ignored, starting over"
                )
                return
            self.saved = {
                **saved,
                "results": [run_from_state(r) for r in saved["results"]],
                "evals": {step: [evals_from_state(e) for e in runs] for step, runs in saved["evals"].items()},
            }
            at = f"at step {saved['fit']['step']}" if saved["fit"] else "from its start"
            log(f"resuming from {self.path}: {len(saved['results'])} runs done, the next group {at}")

    def write(self, state: dict) -> None:
        plain = {
            **state,
            "spec": self.spec,
            "layout": self.LAYOUT,
            "results": [run_state(r) for r in state["results"]],
            "evals": {step: [evals_state(e) for e in runs] for step, runs in state["evals"].items()},
        }
        write_atomically(self.path, lambda tmp: torch.save(plain, tmp))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def evals_state(evals: dict[tuple[str, int], EvalResult]) -> dict:
    """One run's evaluations as tensors and plain values (what `torch.load(weights_only=True)` admits)."""
    return {
        key: {
            f.name: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
            for f in fields(e)
            for v in [getattr(e, f.name)]
        }
        for key, e in evals.items()
    }


def evals_from_state(state: dict) -> dict[tuple[str, int], EvalResult]:
    return {
        key: EvalResult(**{n: v.numpy() if isinstance(v, torch.Tensor) else v for n, v in e.items()})
        for key, e in state.items()
    }


def run_state(result: RunResult) -> dict:
    """A trained run as tensors and plain values, for a shard's saved state."""
    state = {f.name: getattr(result, f.name) for f in fields(result)}
    state["evals"] = evals_state(result.evals)
    state["checkpoints"] = {step: evals_state(e) for step, e in result.checkpoints.items()}
    return state


def run_from_state(state: dict) -> RunResult:
    return RunResult(
        **{
            **state,
            "evals": evals_from_state(state["evals"]),
            "checkpoints": {step: evals_from_state(e) for step, e in state["checkpoints"].items()},
        }
    )
