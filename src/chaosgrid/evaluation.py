"""What a run's evaluation is: per-example predictions and true-class probabilities on every evaluation set
(`EvalResult`), a trained run with its evaluations (`RunResult`), and how K stacked models are evaluated
(`evaluate`). Training (`chaosgrid.train`), the user's trainers (`chaosgrid.trainers`) and the shard files
(`chaosgrid.store`) all speak these types.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from chaosgrid import engine, recipe

# Eval examples per forward pass. A GPU wants large ones. On a CPU, what fits the cache: measured on a 2-core
# CPU with 1 thread, the fast net (width 16) on 32x32 images does ~1,300 img/s in chunks of 128 vs 650 in
# chunks of 2048, while 8 cnns on 8x8 digits take 0.62 s per evaluation in chunks of 512-2048 vs 0.73 s in
# chunks of 128; so a CPU chunk holds as many pixels as 128 CIFAR images.
GPU_EVAL_CHUNK = 2048
CPU_EVAL_PIXELS = 128 * 32 * 32


def eval_chunk(x: torch.Tensor) -> int:
    """Examples per evaluation forward pass for images shaped like x's."""
    if x.device.type != "cpu":
        return GPU_EVAL_CHUNK
    return max(128, min(4096, CPU_EVAL_PIXELS // (x.shape[-2] * x.shape[-1])))


@dataclass
class EvalResult:
    pred: np.ndarray  # uint8, predicted class per example
    p_true: np.ndarray  # float16, softmax probability of the true class per example
    correct: np.ndarray  # bool, pred == label per example (what every variance statistic reads)
    acc: float
    probs: np.ndarray | None = None  # float16 (examples, classes), where a study keeps them (ensembles)
    labels: np.ndarray | None = None  # uint8 true class per example, beside probs


@dataclass
class RunResult:
    cell: dict
    train_loss: float  # mean over the last epoch's batches (augmented, as trained)
    train_acc: float
    diverged_step: int  # first step with a non-finite loss; -1 if none
    wall_s: float  # seconds of this run's training and evaluation (a shard's time split evenly under vmap)
    evals: dict[tuple[str, int], EvalResult]  # at the final checkpoint
    steps: int = 0  # optimizer steps taken
    clipped: float = 0.0  # fraction of steps whose gradient was clipped
    # per epoch: epoch, step, current_lr, train_loss, train_acc
    history: list[dict] = field(default_factory=list)
    checkpoints: dict[int, dict[tuple[str, int], EvalResult]] = field(default_factory=dict)  # earlier steps
    weights: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)  # by step, when kept


@torch.no_grad()
def evaluate(
    stack: engine.Stack, sets: dict, precision: str = "fp32", tta: str = "none", probabilities: bool = False
) -> list[dict[tuple[str, int], EvalResult]]:
    """Per-example predictions and true-class probabilities of the K models on every evaluation set, and
    every class's probability with `probabilities`.

    With tta="flip" the logits are the mean over each image and its mirror (airbench's test-time flip).
    """
    stack.train(False)
    stack.draws_from(-1)  # a model that draws while evaluating draws the same at every evaluation

    def logits(xc: torch.Tensor) -> torch.Tensor:
        with recipe.autocast(xc.device, precision):
            out = stack(xc, shared=True).float()
            return (out + stack(xc.flip(-1), shared=True).float()) / 2 if tta == "flip" else out

    out = None
    for key, (x, y) in sets.items():
        probs = torch.cat([logits(xc).softmax(-1) for xc in x.split(eval_chunk(x))], dim=1)
        results = eval_results(probs, y, probabilities)
        out = out or [{} for _ in results]
        for r, result in enumerate(results):
            out[r][key] = result
    return out


def eval_results(probs: torch.Tensor, y: torch.Tensor, probabilities: bool = False) -> list[EvalResult]:
    """Each run's predictions on one evaluation set from its (K, examples, classes) probabilities."""
    pred = probs.argmax(-1)
    p_true = probs.gather(-1, y.expand(len(probs), -1)[..., None]).squeeze(-1)
    correct = pred == y
    acc = correct.double().mean(1).cpu().tolist()  # float64: exactly the mean of `correct`
    pred, p_true, correct = (
        pred.to(torch.uint8).cpu().numpy(),
        p_true.half().cpu().numpy(),
        correct.cpu().numpy(),
    )
    kept = probs.half().cpu().numpy() if probabilities else [None] * len(probs)
    labels = y.to(torch.uint8).cpu().numpy() if probabilities else None
    return [EvalResult(pred[r], p_true[r], correct[r], acc[r], kept[r], labels) for r in range(len(probs))]
