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
from dataclasses import dataclass, field, replace

import torch
from torch import nn

from chaosgrid import data, engine, evalsets, inputs, models, plugins, recipe, shifts, store
from chaosgrid.cells import PER_RUN, SEED_KEYS, cell_id
from chaosgrid.data import Dataset
from chaosgrid.engine import Execution
from chaosgrid.evaluation import RunResult, evaluate
from chaosgrid.resume import Resume
from chaosgrid.sampling import augmented_copies, balanced_subset, derive_seed, noisy_labels


def training_set(data: Dataset, cell: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """The normalised training images and (possibly noisy) labels that a cell trains on: a subset, its labels
    noised, and with `augment_copies` its fixed augmented copies (augmented after normalising, as live
    augmentation is)."""
    keep = balanced_subset(data.y_train.cpu(), cell["data_fraction"]).to(data.x_train.device)
    x = data.normalize(data.x_train[keep])
    y = noisy_labels(
        data.y_train[keep], cell["label_noise"], data.num_classes, per_class=cell["label_noise_per_class"]
    )
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


def build_stack(
    cells: list[dict],
    x: torch.Tensor,
    num_classes: int,
    execution: Execution,
    start: list[dict] | None = None,
) -> engine.Stack:
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
    named = [
        f"{name} ({type(m).__name__})"
        for name, m in model.named_modules()
        if isinstance(m, RANDOM_MODULES) or type(m).__name__ == "StochasticDepth"
    ]
    if named:
        return named
    model.train(True)
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        outputs = []
        for seed in (1, 2):
            torch.manual_seed(seed)
            outputs.append(model(x))
    return [] if torch.equal(*outputs) else ["its forward pass (two calls under different seeds differ)"]


def evaluate_weights(
    cells: list[dict],
    runs: list[dict],
    diverged: list[bool],
    data: Dataset,
    sets: dict,
    execution: Execution = engine.DEFAULT_EXECUTION,
    probabilities: bool = False,
):
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


def shard_inputs(
    shard,
    device: torch.device,
    execution: Execution,
    data_root: str = "data",
    prepared: dict[str, str] | None = None,
    init_path: str | None = None,
    log: Callable[[str], None] = print,
) -> ShardInputs:
    """Load a shard's inputs (`chaosgrid.plan.specs.Shard`): memory-mapped from the `prepared` files when given
    (by name: `data`, then each evaluation set's), else made here; raises FileNotFoundError or ValueError
    naming what is missing or malformed. A user's model that
    vmap cannot stack trains on the loop engine, with a line saying why."""

    name = shard.base["dataset"]
    dataset = (inputs.load_dataset(name, prepared["data"]) if prepared else data.load(name, data_root)).to(
        device
    )
    execution = execution.resolved(device, dataset.x_train[0, 0].numel(), shard.runs)
    if execution.engine == "vmap" and (why := unstackable(shard.cells()[0], dataset)):
        log(f"vmap cannot stack {shard.base['model']} ({why}): training on the loop engine")
        execution = replace(execution, engine="loop")
    pairs = evalsets.eval_pairs(list(shard.shifts), list(shard.severities))
    sets = shifts.eval_sets(dataset, pairs, data_root, prepared, shard.plane_spec())
    start = (
        store.starting_weights(init_path, list(shard.seed_indices), shard.base["init_epoch"])
        if init_path
        else None
    )
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
    """Train and evaluate a shard's cells on `data`'s device: cells that differ only in their seeds and the
    optimizer's per-run numbers (`PER_RUN`: a shard of several grid points).

    Every checkpoint step (`chaosgrid.checkpoints.steps`) evaluates all sets; `keep_weights` keeps each
    checkpoint's weights (CPU copies); `start` gives each cell a state dict to start from; `probabilities`
    keeps every class's probability per example; `resume` saves the shard's state now and then and
    resumes from what an earlier attempt saved.
    """
    own = set(SEED_KEYS) | set(PER_RUN)
    shared = {k: v for k, v in cells[0].items() if k not in own}
    for c in cells:
        if {k: v for k, v in c.items() if k not in own} != shared:
            raise ValueError(f"a shard's cells must differ only in their seeds and {', '.join(PER_RUN)}")
    if shared["trainer"]:
        raise ValueError(
            "a shard with a trainer trains through chaosgrid.trainers.train_runs, not the recipe"
        )
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
            save = lambda fit, g=g, taken=taken: resume.write(
                {"group": g, "results": results, "fit": fit, "evals": taken.evals, "weights": taken.weights}
            )
            saving = recipe.Saving(save, resume.every, lambda: resume.requested, fit_state)
        fitted = recipe.fit(stack, group, x, y, execution, checkpoints, taken, log, saving=saving)
        evals, weights = taken.evals, taken.weights
        final = max(evals)
        seconds = (time.perf_counter() - begin) / len(group)
        for r, c in enumerate(group):
            step = int(fitted.diverged_step[r])
            run_evals = {s: e[r] for s, e in evals.items()}
            if step >= 0:  # a diverged run has no meaningful accuracy; its predictions are kept as made
                run_evals = {
                    s: {key: replace(e, acc=float("nan")) for key, e in ev.items()}
                    for s, ev in run_evals.items()
                }
            history = [
                {
                    "epoch": h["epoch"],
                    "step": h["step"],
                    "current_lr": float(h["current_lr"][r]),
                    "train_loss": float(h["train_loss"][r]),
                    "train_acc": float(h["train_acc"][r]),
                }
                for h in fitted.history
            ]
            result = RunResult(
                c,
                float(fitted.train_loss[r]),
                float(fitted.train_acc[r]),
                step,
                seconds,
                run_evals.pop(final),
                final,
                float(fitted.clipped[r]),
                history,
                run_evals,
                {s: w[r] for s, w in weights.items()},
            )
            results.append(result)
            if progress:
                progress(result)
        if resume and g + 1 < len(groups):  # a retry starts with the next group, not this one's last save
            resume.write({"group": g + 1, "results": results, "fit": None, "evals": {}, "weights": {}})
    return results
