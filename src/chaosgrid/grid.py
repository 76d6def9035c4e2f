"""Cells, shards and their ids: turn a study's declared axes into schedulable units.

A *cell* is one training run, a flat dict of canonical parameters. Its id is a short hash of those
parameters, so the same run has the same id whatever order a grid lists it in. A *shard* is a block of
cells that differ only in their seeds; one process trains a shard's runs together. A shard's key spells
out its axis values (``lr~0.05/width~16/seeds~0-7``) so that file presence tells what is done and a
changed axis value touches only its own shards.

This module imports neither torch nor Snakemake: the workflow uses it to plan, the trainer to run.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass

# Every training parameter with its default. The defaults train the `cnn` on `digits` to ~98% in ~2 s.
CELL_DEFAULTS: dict[str, object] = {
    "dataset": "digits",  # digits | synthetic | synthetic50k | cifar10
    "model": "cnn",  # cnn | resnet18 | fast
    "width": 16,  # channels of the first stage (resnet18: k; fast: first block)
    "epochs": 12.0,  # passes over the (fractional) training set; may be fractional
    "batch_size": 64,  # examples per step; >= the training set size means full-batch GD
    "lr": 0.05,  # peak learning rate of SGD
    "momentum": 0.9,
    "nesterov": True,
    "weight_decay": 5e-4,
    "label_smoothing": 0.0,
    "schedule": "linear",  # constant | linear | cosine | step
    "warmup": 0.1,  # fraction of all steps spent ramping the lr up linearly from 0
    "augmentation": "none",  # none | flip | crop | flip_crop
    "data_fraction": 1.0,  # class-balanced deterministic subset of the training set, in (0, 1]
    "label_noise": 0.0,  # fraction of training labels replaced by a random other class, in [0, 1)
    "perturbation": "none",  # none | weight | fp16_first_batch (calibrated-chaos tiny perturbations)
    "precision": "fp32",  # fp32 | bf16 (autocast of forward passes; a recipe choice, so part of the cell)
    "tta": "none",  # none | flip: test-time augmentation, logits averaged over the image and its mirror
    "seed_source": "all",  # which seeds follow the seed index: all | init | order | aug
    "init_seed": 0,
    "order_seed": 0,
    "aug_seed": 0,
}
SEED_KEYS = ("init_seed", "order_seed", "aug_seed")
CHOICES: dict[str, tuple[str, ...]] = {
    "dataset": ("digits", "synthetic", "synthetic50k", "cifar10"),
    "model": ("cnn", "resnet18", "fast"),
    "schedule": ("constant", "linear", "cosine", "step"),
    "augmentation": ("none", "flip", "crop", "flip_crop"),
    "perturbation": ("none", "weight", "fp16_first_batch"),
    "precision": ("fp32", "bf16"),
    "tta": ("none", "flip"),
    "seed_source": ("all", "init", "order", "aug"),
}
# Corruption families of chaosgrid.shifts (kept here so planning needs no torch; a test checks they agree).
CORRUPTION_NAMES = ("gaussian_noise", "gaussian_blur", "contrast", "brightness", "pixelate", "jpeg")
# Evaluation sets that are not test sets: points on planes through training images (chaosgrid.planes).
# They are stored like any evaluation set but kept out of accuracy tables and variance statistics.
PROBE_SETS = ("planes",)
SINGLE_LEVEL_SETS = ("cifar10_1", *PROBE_SETS)  # one version each: severity 0
# Seeds that do not follow the seed index stay at this value.
FIXED_SEED = 0


class GridError(ValueError):
    """A parameter or grid declaration is invalid; the message names the parameter."""


def format_value(value: object) -> str:
    """Canonical text of a parameter value, the same in ids and paths (0.1 never becomes 1e-1)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(value)
        return text[:-2] if text.endswith(".0") and "e" not in text else text
    return str(value)


def _coerce(name: str, value: object) -> object:
    """Cast a value to the type of its default, so 1 and 1.0 give the same cell id."""
    default = CELL_DEFAULTS[name]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise GridError(f"parameter {name!r} must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GridError(f"parameter {name!r} must be a number, got {value!r}")
        if isinstance(default, int) and float(value) != int(value):
            raise GridError(f"parameter {name!r} must be an integer, got {value!r}")
        return type(default)(value)
    return str(value)


def validate_cell(params: dict) -> dict:
    """Return the complete, canonical cell for `params`, or raise GridError naming the bad parameter."""
    unknown = sorted(set(params) - set(CELL_DEFAULTS))
    if unknown:
        raise GridError(f"unknown parameter {unknown[0]!r}; known: {', '.join(CELL_DEFAULTS)}")
    cell = {name: _coerce(name, params.get(name, default)) for name, default in CELL_DEFAULTS.items()}
    for name, choices in CHOICES.items():
        if cell[name] not in choices:
            raise GridError(f"parameter {name!r} is {cell[name]!r}; choose one of {', '.join(choices)}")
    checks = {
        "lr": cell["lr"] > 0,
        "width": cell["width"] >= 1,
        "epochs": cell["epochs"] > 0,
        "batch_size": cell["batch_size"] >= 1,
        "data_fraction": 0 < cell["data_fraction"] <= 1,
        "label_noise": 0 <= cell["label_noise"] < 1,
        "label_smoothing": 0 <= cell["label_smoothing"] < 1,
        "warmup": 0 <= cell["warmup"] < 1,
        "momentum": 0 <= cell["momentum"] < 1,
        "weight_decay": cell["weight_decay"] >= 0,
    }
    checks.update({key: cell[key] >= 0 for key in SEED_KEYS})
    bad = [name for name, ok in checks.items() if not ok]
    if bad:
        raise GridError(f"parameter {bad[0]!r} is out of range: {cell[bad[0]]!r}")
    return cell


def cell_id(cell: dict) -> str:
    """Stable 12-hex-digit id of a canonical cell: a hash of its sorted, canonically formatted values."""
    canonical = json.dumps({k: format_value(v) for k, v in sorted(cell.items())}, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def seeds_for(seed_source: str, index: int) -> dict[str, int]:
    """The three seeds of seed index `index`: the sources named by `seed_source` follow it, others stay fixed."""
    varied = SEED_KEYS if seed_source == "all" else (f"{seed_source}_seed",)
    return {key: index if key in varied else FIXED_SEED for key in SEED_KEYS}


@dataclass(frozen=True)
class Shard:
    """Cells that differ only in their seeds: `base` parameters and a block of seed indices."""

    study: str
    key: str  # e.g. "lr~0.05/width~16/seeds~0-7"; the shard's output paths are built from it
    base: dict
    seed_indices: tuple[int, ...]
    shifts: tuple[str, ...] = ()  # evaluation sets besides the clean test set
    severities: tuple[int, ...] = ()

    def cells(self) -> list[dict]:
        """The shard's canonical cells, in seed order."""
        return [
            validate_cell({**self.base, **seeds_for(self.base["seed_source"], i)}) for i in self.seed_indices
        ]

    def to_json(self) -> str:
        """Compact spec the trainer reads: base parameters and seed indices."""
        spec = {"study": self.study, "key": self.key, "base": self.base, "seeds": list(self.seed_indices)}
        return json.dumps({**spec, "shifts": list(self.shifts), "severities": list(self.severities)})

    @classmethod
    def from_json(cls, text: str) -> Shard:
        spec = json.loads(text)
        missing = {"base", "seeds"} - set(spec)
        if missing:
            raise GridError(f"shard spec lacks {min(missing)!r}")
        base = validate_cell(spec["base"])
        base = {k: v for k, v in base.items() if k not in SEED_KEYS}
        shifts, severities = tuple(spec.get("shifts", ())), tuple(int(s) for s in spec.get("severities", ()))
        check_shifts(shifts, severities, base["dataset"])
        seeds = tuple(int(s) for s in spec["seeds"])
        return cls(spec.get("study", "adhoc"), spec.get("key", ""), base, seeds, shifts, severities)


def check_shifts(shifts: tuple[str, ...], severities: tuple[int, ...], dataset: str) -> None:
    """Raise GridError naming the first unknown shift, a published set on the wrong dataset, or a bad severity."""
    for name in shifts:
        if name in PROBE_SETS:
            continue
        if name == "cifar10_1" or name.startswith("cifar10c_"):
            if dataset != "cifar10":
                raise GridError(f"shift {name!r} is a published CIFAR-10 set, but dataset is {dataset!r}")
        elif name not in CORRUPTION_NAMES:
            known = ", ".join(CORRUPTION_NAMES)
            raise GridError(f"unknown shift {name!r}; choose from {known}, cifar10_1, cifar10c_<corruption>, planes")
    for severity in severities:
        if not 1 <= severity <= 5:
            raise GridError(f"severity must be 1..5, got {severity!r}")
    if any(name not in SINGLE_LEVEL_SETS for name in shifts) and not severities:
        raise GridError("shifts are listed but 'severities' is empty")


STUDY_KEYS = {"seeds", "shard_size", "shifts", "severities", "resources"}


def seed_list(seeds: int | list[int]) -> list[int]:
    """`seeds` as declared: a count n means indices 0..n-1, a list means exactly those indices."""
    return list(range(seeds)) if isinstance(seeds, int) else sorted(set(seeds))


def study_axes(study: dict) -> list[str]:
    """The study's axes: its list-valued cell parameters, in canonical (CELL_DEFAULTS) order."""
    return [k for k in CELL_DEFAULTS if isinstance(study.get(k), list)]


def expand_study(name: str, study: dict) -> list[Shard]:
    """All shards of a study. List-valued parameters are axes (their product is the grid); scalars are fixed.

    Axes appear in a shard's key in CELL_DEFAULTS order, so keys never depend on the YAML's key order.
    """
    params = {k: v for k, v in study.items() if k not in STUDY_KEYS}
    for seed_key in SEED_KEYS:
        if seed_key in params:
            raise GridError(f"study {name!r}: set 'seeds' and 'seed_source', not {seed_key!r}")
    axes = study_axes(params)
    for axis in axes:
        if not params[axis]:
            raise GridError(f"study {name!r}: axis {axis!r} is empty")
    shifts, severities = tuple(study.get("shifts", ())), tuple(study.get("severities", ()))
    seeds = seed_list(study.get("seeds", 1))
    size = int(study.get("shard_size", len(seeds)))
    blocks = [tuple(seeds[i : i + size]) for i in range(0, len(seeds), size)]
    shards = []
    for values in itertools.product(*(params[a] for a in axes)):
        base = validate_cell({**params, **dict(zip(axes, values, strict=True))})
        base = {k: v for k, v in base.items() if k not in SEED_KEYS}
        check_shifts(shifts, severities, base["dataset"])
        prefix = "".join(f"{a}~{format_value(base[a])}/" for a in axes)
        for block in blocks:
            key = f"{prefix}seeds~{block[0]}-{block[-1]}"
            shards.append(Shard(name, key, base, block, shifts, severities))
    return shards

