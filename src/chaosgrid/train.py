"""Train and evaluate the runs of one shard: one data load, K models, per-run seeds for init, order,
augmentation and gradient noise.

The shard's job: the training set of its cells (`training_set`), their models at initialisation or loaded
from another shard's weights (`build_stack`), the recipe (`chaosgrid.recipe.fit`) run on the engine the
`Execution` resolves to (`chaosgrid.engine`), and evaluation at every checkpoint (`evaluate`): per-example
predictions on every evaluation set, and the weights where the shard keeps them.

A run whose loss goes NaN/inf is marked diverged at that step; the others are unaffected.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from chaosgrid import engine, models, plugins, recipe
from chaosgrid.cells import SEED_KEYS, cell_id
from chaosgrid.data import Dataset, augmented_copies, balanced_subset, derive_seed, noisy_labels
from chaosgrid.engine import Execution

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
    history: list[dict] = field(default_factory=list)  # per epoch: epoch, step, current_lr, train_loss, train_acc
    checkpoints: dict[int, dict[tuple[str, int], EvalResult]] = field(default_factory=dict)  # earlier steps
    weights: dict[int, dict[str, torch.Tensor]] = field(default_factory=dict)  # by step, when kept


def training_set(data: Dataset, cell: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised training images and (possibly noisy) labels that a cell trains on: a subset, its labels
    noised, and with `augment_copies` its fixed augmented copies (augmented after normalising, as live
    augmentation is)."""
    keep = balanced_subset(data.y_train.cpu(), cell["data_fraction"]).to(data.x_train.device)
    x = data.normalize(data.x_train[keep])
    y = noisy_labels(data.y_train[keep], cell["label_noise"], data.num_classes, per_class=cell["label_noise_per_class"])
    if cell["augment_copies"]:
        x, y = augmented_copies(x, y, cell["augment_copies"], cell["augmentation"])
    return x, y


def init_model(cell: dict, x_train: torch.Tensor, num_classes: int) -> nn.Module:
    """The cell's model at initialisation, built on the CPU from its init seed (device-independent). A model
    with a `fit_to_data(x)` method (data-dependent initialisation, as the fast net's whitening) is given the
    first 5,000 training images."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed("init", cell["init_seed"]))
        model = models.build(cell["model"], tuple(x_train.shape[1:]), num_classes, cell["width"])
    if hasattr(model, "fit_to_data"):
        model.fit_to_data(x_train[:5000].cpu())
    if cell["perturbation"] == "weight":
        with torch.no_grad():
            next(p for p in model.parameters() if p.dim() > 1).view(-1)[0] *= 1.001
    return model


def build_stack(cells: list[dict], x: torch.Tensor, num_classes: int, execution: Execution,
                start: list[dict] | None = None) -> engine.Stack:  # fmt: skip
    """The cells' models on x's device and dtype, stacked for the (resolved) engine, in its layout: at initialisation,
    or from `start`, one state dict per cell (a trained run that this one continues)."""
    modules = [init_model(c, x, num_classes) for c in cells]
    for module, state in zip(modules, start or [], strict=False):
        module.load_state_dict(state)
    layout = engine.memory_format(execution)
    modules = [m.to(x.device, x.dtype, memory_format=layout) for m in modules]
    return engine.make_stack(modules, execution, [model_seed(c) for c in cells])


def model_seed(cell: dict) -> int:
    """The seed of a run's random draws inside its model (dropout, noise layers): its order seed's, as
    gradient noise is (both stand for the noise of training, not of initialisation)."""
    return derive_seed("model", cell["order_seed"])


RANDOM_MODULES = (nn.modules.dropout._DropoutNd,)  # every dropout; torchvision's StochasticDepth by name


def random_draws(model: nn.Module, x: torch.Tensor) -> list[str]:
    """What in `model` draws random numbers while training: its random modules by name and type, or, where
    none is known but two forward passes under different global seeds differ, its forward pass."""
    named = [f"{name} ({type(m).__name__})" for name, m in model.named_modules()
             if isinstance(m, RANDOM_MODULES) or type(m).__name__ == "StochasticDepth"]  # fmt: skip
    if named:
        return named
    model.train(True)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        outputs = []
        for seed in (1, 2):
            torch.manual_seed(seed)
            outputs.append(model(x))
    return [] if torch.equal(*outputs) else ["its forward pass (two calls under different seeds differ)"]


@torch.no_grad()
def evaluate(stack: engine.Stack, sets: dict, precision: str = "fp32", tta: str = "none",
             probabilities: bool = False) -> list[dict[tuple[str, int], EvalResult]]:  # fmt: skip
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
    pred, p_true, correct = pred.to(torch.uint8).cpu().numpy(), p_true.half().cpu().numpy(), correct.cpu().numpy()
    kept = probs.half().cpu().numpy() if probabilities else [None] * len(probs)
    labels = y.to(torch.uint8).cpu().numpy() if probabilities else None
    return [EvalResult(pred[r], p_true[r], correct[r], acc[r], kept[r], labels) for r in range(len(probs))]


def evaluate_weights(cells: list[dict], runs: list[dict], diverged: list[bool], data: Dataset, sets: dict,
                     execution: Execution = engine.DEFAULT_EXECUTION, probabilities: bool = False):  # fmt: skip
    """Evaluate a shard's kept weights on `sets` at every kept checkpoint, as its training evaluates (the same
    stacks, layout and chunks): `runs` holds each cell's entry of its weights file (`store.read_weights`).
    Yields (cell id, step, final, {evaluation set: EvalResult}), a diverged run's accuracy NaN as in training.
    Where a study keeps weights its shifted and probe sets are evaluated so, after training: a new shift
    costs an evaluation, not a retrain."""
    x = data.normalize(data.x_train[:5000])  # the models' input shape and dtype (their weights are loaded)
    execution = execution.resolved(x.device, x.shape[-2] * x.shape[-1], len(cells))
    layout = engine.memory_format(execution)
    sets = {key: (xs.contiguous(memory_format=layout), ys) for key, (xs, ys) in sets.items()}
    for group in engine.stack_groups(list(zip(cells, runs, diverged, strict=True)), execution):
        for step in sorted(group[0][1]["weights"]):
            states = [run["weights"][step] for _, run, _ in group]
            stack = build_stack([cell for cell, _, _ in group], x, data.num_classes, execution, states)
            found = evaluate(stack, sets, cells[0]["precision"], cells[0]["tta"], probabilities)
            for (cell, run, lost), evals in zip(group, found, strict=True):
                if lost:
                    evals = {key: replace(e, acc=float("nan")) for key, e in evals.items()}
                yield cell_id(cell), step, step == run["steps"], evals


@dataclass
class Checkpoints:
    """The fit's checkpoint hook: evaluates every set, and keeps the weights when asked, by step."""

    stack: engine.Stack
    sets: dict
    precision: str
    tta: str
    keep_weights: bool
    probabilities: bool = False
    evals: dict[int, list] = field(default_factory=dict)
    weights: dict[int, list] = field(default_factory=dict)

    def __call__(self, step: int) -> None:
        self.evals[step] = evaluate(self.stack, self.sets, self.precision, self.tta, self.probabilities)
        if self.keep_weights:
            self.weights[step] = self.stack.state_dicts()


@dataclass
class ShardInputs:
    """What a shard job trains on: its dataset on the device, its evaluation sets, how it runs, and each
    run's starting weights (runs continuing another study's)."""

    data: Dataset
    sets: dict
    execution: Execution
    start: list[dict] | None


def shard_inputs(shard, device: torch.device, execution: Execution, data_root: str = "data",
                 prepared: str | None = None, init_path: str | None = None,
                 log: Callable[[str], None] = print) -> ShardInputs:  # fmt: skip
    """Load a shard's inputs (`chaosgrid.studies.Shard`): memory-mapped from `prepared` when given, else made
    here; raises FileNotFoundError or ValueError naming what is missing or malformed. A user's model that
    vmap cannot stack trains on the loop engine, with a line saying why."""
    from chaosgrid import data, evalsets, inputs, shifts, store

    name = shard.base["dataset"]
    dataset = (inputs.load_dataset(name, prepared) if prepared else data.load(name, data_root)).to(device)
    execution = execution.resolved(device, dataset.x_train[0, 0].numel(), len(shard.seed_indices))
    if execution.engine == "vmap" and (why := unstackable(shard.cells()[0], dataset)):
        log(f"vmap cannot stack {shard.base['model']} ({why}): training on the loop engine")
        execution = replace(execution, engine="loop")
    pairs = evalsets.eval_pairs(list(shard.shifts), list(shard.severities))
    sets = shifts.eval_sets(dataset, pairs, data_root, prepared, shard.plane_spec())
    start = (store.starting_weights(init_path, list(shard.seed_indices), shard.base["init_epoch"])
             if init_path else None)  # fmt: skip
    return ShardInputs(dataset, sets, execution, start)


def unstackable(cell: dict, data: Dataset) -> str:
    """Why vmap cannot stack the cell's model, or "": random draws (dropout and the like: vmap cannot draw
    them from each run's own seeds), or, for a user's model, a failed training step of two copies under it
    (an in-place update of a parameter or buffer, data-dependent control flow, an op without a batching
    rule)."""
    x = data.normalize(data.x_train[:4])
    if draws := random_draws(init_model(cell, x, data.num_classes), x):
        return f"it draws random numbers: {', '.join(draws)}; the loop draws them from each run's own seed"
    if not plugins.is_reference(cell["model"]):
        return ""
    stack = build_stack([cell, cell], x, data.num_classes, engine.Execution("vmap"))
    try:
        stack.train(True)
        stack(torch.stack([x, x])).sum().backward()
    except Exception as err:  # noqa: BLE001 -- any failure of the user's module under vmap means: use the loop
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return ""


class Resume:
    """A shard's saved state (`recipe.Saving`): where it lives (outside the job's declared outputs, which
    Snakemake deletes when a job fails), the spec it belongs to, how often to save, and what an earlier
    attempt saved. Besides the running fit, the state holds the runs of the shard's groups already trained
    and the checkpoint evaluations so far, as tensors and plain values only: it is read with
    `weights_only=True`, so a file planted in a shared results folder can run no code. A state saved for
    another spec or by another layout is ignored and a corrupt or refused one reported; the shard then
    starts over."""

    LAYOUT = 2  # what `write` stores; a state of another layout (an older chaosgrid's) starts over

    def __init__(self, path: str, spec: str, every: float, log: Callable[[str], None] = print):
        from chaosgrid.store import load_torch_file

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
                log(f"{self.path} was saved by another version of chaosgrid (layout {saved.get('layout', 1)}, "
                    f"this one reads {self.LAYOUT}): ignored, starting over")  # fmt: skip
                return
            self.saved = {**saved, "results": [run_from_state(r) for r in saved["results"]],
                          "evals": {step: [evals_from_state(e) for e in runs] for step, runs in saved["evals"].items()}}  # fmt: skip
            at = f"at step {saved['fit']['step']}" if saved["fit"] else "from its start"
            log(f"resuming from {self.path}: {len(saved['results'])} runs done, the next group {at}")

    def write(self, state: dict) -> None:
        from chaosgrid.store import write_atomically

        plain = {**state, "spec": self.spec, "layout": self.LAYOUT,
                 "results": [run_state(r) for r in state["results"]],
                 "evals": {step: [evals_state(e) for e in runs] for step, runs in state["evals"].items()}}  # fmt: skip
        write_atomically(self.path, lambda tmp: torch.save(plain, tmp))

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


def evals_state(evals: dict[tuple[str, int], EvalResult]) -> dict:
    """One run's evaluations as tensors and plain values (what `torch.load(weights_only=True)` admits)."""
    return {key: {f.name: torch.from_numpy(v) if isinstance(v, np.ndarray) else v
                  for f in fields(e) for v in [getattr(e, f.name)]} for key, e in evals.items()}  # fmt: skip


def evals_from_state(state: dict) -> dict[tuple[str, int], EvalResult]:
    return {key: EvalResult(**{n: v.numpy() if isinstance(v, torch.Tensor) else v for n, v in e.items()})
            for key, e in state.items()}  # fmt: skip


def run_state(result: RunResult) -> dict:
    """A trained run as tensors and plain values, for a shard's saved state."""
    state = {f.name: getattr(result, f.name) for f in fields(result)}
    state["evals"] = evals_state(result.evals)
    state["checkpoints"] = {step: evals_state(e) for step, e in result.checkpoints.items()}
    return state


def run_from_state(state: dict) -> RunResult:
    return RunResult(**{**state, "evals": evals_from_state(state["evals"]),
                        "checkpoints": {step: evals_from_state(e) for step, e in state["checkpoints"].items()}})  # fmt: skip


def train_shard(
    cells: list[dict],
    data: Dataset,
    sets: dict,
    execution: Execution = engine.DEFAULT_EXECUTION,
    progress: Callable[[RunResult], None] | None = None,
    checkpoints: str = "final",
    keep_weights: bool = False,
    start: list[dict] | None = None,
    log: Callable[[str], None] | None = None,
    probabilities: bool = False,
    resume: Resume | None = None,
) -> list[RunResult]:
    """Train and evaluate a shard's cells (which must differ only in seeds) on `data`'s device.

    Every checkpoint step (`chaosgrid.checkpoints.steps`) evaluates all sets; `keep_weights` keeps each
    checkpoint's weights (CPU copies); `start` gives each cell a state dict to start from; `probabilities`
    keeps every class's probability per example; `resume` saves the shard's state now and then and
    resumes from what an earlier attempt saved.
    """
    shared = {k: v for k, v in cells[0].items() if k not in SEED_KEYS}
    for c in cells:
        if {k: v for k, v in c.items() if k not in SEED_KEYS} != shared:
            raise ValueError("a shard's cells must differ only in their seeds")
    if shared["trainer"]:  # the user's own training code trains each run (chaosgrid.trainers)
        from chaosgrid.trainers import train_runs

        return train_runs(cells, data, sets, progress, probabilities)
    device = data.x_train.device
    x, y = training_set(data, cells[0])
    execution = execution.resolved(device, x.shape[-2] * x.shape[-1], len(cells))
    layout = engine.memory_format(execution)
    sets = {key: (xs.contiguous(memory_format=layout), ys) for key, (xs, ys) in sets.items()}
    saved = resume.saved if resume else None
    results = list(saved["results"]) if saved else []
    groups = engine.stack_groups(list(range(len(cells))), execution)
    for g, positions in enumerate(groups):
        if saved and g < saved["group"]:
            continue  # trained by an earlier attempt: its runs are in `results`
        group = [cells[i] for i in positions]
        begin = time.perf_counter()
        fit_state = saved["fit"] if saved and g == saved["group"] else None
        starts = fit_state["stack"] if fit_state else [start[i] for i in positions] if start else None
        stack = build_stack(group, x, data.num_classes, execution, starts)
        taken = Checkpoints(stack, sets, shared["precision"], shared["tta"], keep_weights, probabilities)
        saving = None
        if resume:
            if fit_state:
                taken.evals, taken.weights = saved["evals"], saved["weights"]
            save = lambda fit, g=g, taken=taken: resume.write({"group": g, "results": results, "fit": fit,
                                                                "evals": taken.evals, "weights": taken.weights})  # fmt: skip
            saving = recipe.Saving(save, resume.every, lambda: resume.requested, fit_state)
        fitted = recipe.fit(stack, group, x, y, execution, checkpoints, taken, log, saving=saving)
        evals, weights = taken.evals, taken.weights
        final = max(evals)
        seconds = (time.perf_counter() - begin) / len(group)
        for r, c in enumerate(group):
            step = int(fitted.diverged_step[r])
            run_evals = {s: e[r] for s, e in evals.items()}
            if step >= 0:  # a diverged run has no meaningful accuracy; its predictions are kept as made
                run_evals = {s: {key: replace(e, acc=float("nan")) for key, e in ev.items()}
                             for s, ev in run_evals.items()}  # fmt: skip
            history = [{"epoch": h["epoch"], "step": h["step"], "current_lr": h["current_lr"], "train_loss": float(h["train_loss"][r]),
                        "train_acc": float(h["train_acc"][r])} for h in fitted.history]  # fmt: skip
            result = RunResult(
                c, float(fitted.train_loss[r]), float(fitted.train_acc[r]), step, seconds, run_evals.pop(final),
                final, float(fitted.clipped[r]), history, run_evals, {s: w[r] for s, w in weights.items()},
            )
            results.append(result)
            if progress:
                progress(result)
        if resume and g + 1 < len(groups):  # a retry starts with the next group, not this one's last save
            resume.write({"group": g + 1, "results": results, "fit": None, "evals": {}, "weights": {}})
    return results
