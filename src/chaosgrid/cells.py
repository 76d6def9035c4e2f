"""Cells: every training parameter declared once, a cell's validation, and its stable id.

A *cell* is one training run, a flat dict of canonical parameters. `PARAMETERS` is the one place a parameter
is declared: its default, its allowed values (choices, an interval, or a name pattern), a one-line doc and
its section. The defaults, the choices, the range checks, the config schema's study properties and the
table in config/README.md all derive from it (`chaosgrid schema --write` regenerates the last two; a test
fails when they drift).

The defaults are *published*: a cell's id hashes only the values that differ from them (`identity`), so
they never change (a test freezes them), and every parameter added later defaults to "off" — the value that
reproduces the recipe as it was — so adding one changes no id and re-runs nothing.

This module imports neither torch nor Snakemake: the workflow uses it to plan, the trainer to run.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

NAME = r"[A-Za-z0-9_]*"  # study and variant names ("" allowed: none)
CODE = r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*"  # package.module:attribute
NPZ = r"npz:.+\.npz"  # a dataset in one .npz file (`dataset: {npz: path}` in a config)
# Numbers YAML 1.1 leaves as text: an exponent without a dot in the mantissa (5e-4, 1E3). Accepted as numbers.
YAML11_FLOAT = re.compile(r"[-+]?[0-9]+[eE][-+]?[0-9]+")
STUDY_NAME = re.compile(r"[A-Za-z0-9_]+")
INTERVAL = re.compile(r"([\[(])\s*(-?[0-9.]+|-inf)\s*,\s*([0-9.]+|inf)\s*([\])])")


class GridError(ValueError):
    """A parameter or grid declaration is invalid; the message names the parameter."""


@dataclass(frozen=True)
class Parameter:
    """One cell parameter. `values`: a tuple of choices, an interval such as "[0, 1)" for numbers, a regular
    expression for free text, or None for booleans; `other`: a regular expression of further text values
    besides the choices (the user's own code or files)."""

    default: bool | int | float | str
    section: str
    doc: str
    values: tuple[str, ...] | str | None = None
    other: str = ""
    # a config may also write {mapping: text}, meaning "mapping:text" (`dataset: {npz: path}`)
    mapping: str = ""

    def interval(self) -> tuple[float, float, bool, bool] | None:
        """(low, high, low included, high included) of a numeric parameter."""
        if isinstance(self.default, bool) or not isinstance(self.default, (int, float)):
            return None
        low_bracket, low, high, high_bracket = INTERVAL.fullmatch(self.values).groups()
        return float(low), float(high), low_bracket == "[", high_bracket == "]"

    def admits(self, value: object) -> bool:
        if isinstance(self.values, tuple):
            return value in self.values or bool(self.other and re.fullmatch(self.other, str(value)))
        if bound := self.interval():
            low, high, low_in, high_in = bound
            return (low < value or (low_in and value == low)) and (
                value < high or (high_in and value == high)
            )
        if isinstance(self.values, str):
            return re.fullmatch(self.values, str(value)) is not None
        return True


P = Parameter
# Order matters: a shard key lists its axes in this order, so existing parameters keep their places.
# fmt: off
PARAMETERS: dict[str, Parameter] = {
    "variant": P("", "label", "a named recipe of the study's `variants` (set there, not directly); \"\": none", NAME),
    "dataset": P("digits", "data and model", "`digits` (scikit-learn, 8x8), `synthetic` (3x32x32, 5,000/1,000), "
                 "`synthetic50k` (CIFAR-10 sized), `mnist1d` (1-D signals of length 40, 2,000/10,000, generated "
                 "offline; no image shifts); from `data_root`, downloaded when missing: `cifar10`, `cifar100`, "
                 "`svhn` (train and test), `mnist`, `fashion_mnist` (28x28); or your own: "
                 "`package.module:function` returning arrays, or `{npz: path}` (docs/your-own-experiments.md)",
                 ("digits", "synthetic", "synthetic50k", "cifar10", "mnist1d", "cifar100", "svhn", "mnist",
                  "fashion_mnist"), other=f"{CODE}|{NPZ}",
                 mapping="npz"),
    "model": P("cnn", "data and model", "`cnn` (VGG-style, widths w/2w/4w), `vgg16` (VGG-16-BN, one linear layer; "
               "w=64: 14.7M parameters), `vgg16_dmc` (dnn-mode-connectivity's VGG16BN: its 8w-8w classifier with "
               "dropout), `resnet18` and `preact_resnet18` (widths k/2k/4k/8k), `wrn28` (Wide "
               "ResNet-28-k), `densenet` (DenseNet-BC, growth w), `fast` (airbench-style), `mlp` (two hidden layers "
               "of 16w), `vit` and `mixer` (4x4 patches, dim 8w), `conv1d` (signals only); `fast`, `vit` and "
               "`mixer` need images; or your own: `package.module:function` (docs/your-own-experiments.md)",
               ("cnn", "vgg16", "vgg16_dmc", "resnet18", "preact_resnet18", "wrn28", "densenet", "fast", "mlp", "vit", "mixer",
                "conv1d"), other=CODE),
    "width": P(16, "data and model", "channels of the first stage (resnet18: k; fast: first block)", "[1, inf)"),
    "epochs": P(12.0, "length and batching", "passes over the (fractional) training set; may be fractional",
                "(0, inf)"),
    "batch_size": P(64, "length and batching", "examples per optimizer step; the training-set size or more is "
                    "full-batch GD", "[1, inf)"),
    "micro_batch": P(0, "length and batching", "examples per forward/backward pass within a step (gradient "
                     "accumulation: losses scaled by their share; BatchNorm sees each micro-batch); 0: the batch",
                     "[0, inf)"),
    "batch_order": P("shuffle", "length and batching", "`shuffle` (a new permutation each epoch), `replacement` "
                     "(each batch sampled with replacement), `fixed` (one permutation for every epoch)",
                     ("shuffle", "replacement", "fixed")),
    "drop_last": P(False, "length and batching", "leave out each epoch's last partial batch and each step's last "
                   "partial micro-batch (`DataLoader(drop_last=True)`, Geiping et al.'s code)"),
    "optimizer": P("sgd", "optimizer", "`sgd` (momentum, Nesterov, weight decay below), `adam`, `adamw` (betas "
                   "0.9/0.999), `sam` (Foret et al.: ascend by `sam_rho`·g/‖g‖, take the gradient there, return, "
                   "then the SGD step)", ("sgd", "adam", "adamw", "sam")),
    "lr": P(0.05, "optimizer", "peak learning rate", "(0, inf)"),
    "momentum": P(0.9, "optimizer", "SGD momentum (Adam's beta1 stays 0.9)", "[0, 1)"),
    "nesterov": P(True, "optimizer", "Nesterov momentum (SGD, SAM)"),
    "weight_decay": P(5e-4, "optimizer", "L2 coefficient (SGD's coupled form; Adam's and AdamW's own decay)",
                      "[0, inf)"),
    "sam_rho": P(0.05, "optimizer", "SAM's ascent radius (`optimizer: sam` only)", "(0, inf)"),
    "label_smoothing": P(0.0, "optimizer", "cross-entropy label smoothing", "[0, 1)"),
    "schedule": P("linear", "schedule", "lr schedule after the warm-up: `constant`, `linear` (to 0), `cosine`, "
                  "`step` (x0.1 at 50% and 75%), `garipov` (dnn-mode-connectivity's: the peak to 50%, linearly to "
                  "1% at 90%, then 1%, set once per epoch), `cyclic_cosine` (snapshot ensembles: `cycles` cosine "
                  "cycles; snapshots at cycle ends), `fge` (`cycles` cycles lr → `lr_min` → lr; snapshots at the "
                  "low points)", ("constant", "linear", "cosine", "step", "garipov", "cyclic_cosine", "fge")),
    "warmup": P(0.1, "schedule", "fraction of all steps spent ramping the lr up linearly from 0", "[0, 1)"),
    "decay_length": P(0.0, "schedule", "steps of the decay after warm-up, as a multiple of all steps (Geiping et "
                      "al.'s cosine-4000 over 3,000 steps: 1.333); 0: the rest of the run", "[0, inf)"),
    "cycles": P(1, "schedule", "`cyclic_cosine` and `fge`: cycles after warm-up", "[1, inf)"),
    "lr_min": P(0.0, "schedule", "`fge`: the low learning rate (alpha_2) reached mid-cycle; at most `lr`",
                "[0, inf)"),
    "grad_penalty": P(0.0, "gradient operations", "alpha of the gradient-norm penalty per micro-batch (Geiping "
                      "et al.): g + (lr/4)·H(alpha·g)", "[0, inf)"),
    "penalty_method": P("fd", "gradient operations", "`fd`: forward finite difference (the authors' code); "
                        "`autograd`: double backprop (agrees on smooth nets, not at ReLU kinks)", ("fd", "autograd")),
    "penalty_eps": P(0.01, "gradient operations", "L2 length of the finite-difference step", "(0, inf)"),
    "grad_clip": P(0.0, "gradient operations", "clip each run's gradient (after accumulation and penalty) to this "
                   "global L2 norm; 0: off", "[0, inf)"),
    "noise_additive": P(0.0, "gradient operations", "std of Gaussian noise added to each gradient coordinate, "
                        "after clipping: g + σξ (ξ follows the order seed)", "[0, inf)"),
    "noise_multiplicative": P(0.0, "gradient operations", "std of Gaussian noise multiplying each coordinate: "
                              "g ⊙ (1 + σξ)", "[0, inf)"),
    "augmentation": P("none", "data variants", "`flip`, `crop` (translate by up to H/8 px; signals along their "
                      "length by L/8), `flip_crop`", ("none", "flip", "crop", "flip_crop")),
    "augment_copies": P(0, "data variants", "train on this many fixed augmented copies of the training set, no "
                        "live augmentation (Geiping et al.'s \"10x CIFAR\"); 0: live", "[0, inf)"),
    "data_fraction": P(1.0, "data variants", "class-balanced deterministic subset of the training set", "(0, 1]"),
    "label_noise": P(0.0, "data variants", "fraction of training labels replaced (fixed seed) by another class",
                     "[0, 1)"),
    "label_noise_per_class": P(False, "data variants", "take that fraction of every class (Somepalli et al.), not "
                               "of the whole set"),
    "perturbation": P("none", "calibrated chaos, precision, evaluation", "`weight` (one weight x1.001 after init) "
                      "or `fp16_first_batch`", ("none", "weight", "fp16_first_batch")),
    "precision": P("fp32", "calibrated chaos, precision, evaluation", "`bf16`: forward passes under bf16 autocast "
                   "(a different run, so part of the id)", ("fp32", "bf16")),
    "tta": P("none", "calibrated chaos, precision, evaluation", "`flip`: test-time augmentation, logits averaged "
             "over each image and its mirror (airbench)", ("none", "flip")),
    "init_from": P("", "calibrated chaos, precision, evaluation", "a study of this config whose final weights (same "
                   "axis values and seed index) start these runs; the optimizer starts fresh; \"\": fresh init",
                   NAME),
    "init_epoch": P(0.0, "calibrated chaos, precision, evaluation", "with `init_from`: start from the source's "
                    "checkpoint at this epoch (it must keep it); 0: its final weights", "[0, inf)"),
    "trainer": P("", "your own training code", "train each run with your own code instead of chaosgrid's recipe: "
                 "`package.module:function` called in the shard's process, or `{command: \"python train.py --lr "
                 "{lr} --out {out}\"}` run without a shell; the study may then declare keys of its own "
                 "(docs/your-own-experiments.md); \"\": the recipe", f"|{CODE}|command:.+", mapping="command"),
    "seed_source": P("all", "seeds", "which seeds follow the seed index: `all`, `init`, `order` or `aug` (the others "
                     "stay at 0)", ("all", "init", "order", "aug")),
    "init_seed": P(0, "seeds", "set by `seeds` and `seed_source`", "[0, inf)"),
    "order_seed": P(0, "seeds", "set by `seeds` and `seed_source`", "[0, inf)"),
    "aug_seed": P(0, "seeds", "set by `seeds` and `seed_source`", "[0, inf)"),
}
# fmt: on
del P
CELL_DEFAULTS: dict[str, object] = {name: p.default for name, p in PARAMETERS.items()}
CHOICES: dict[str, tuple[str, ...]] = {
    name: p.values for name, p in PARAMETERS.items() if isinstance(p.values, tuple)
}
SEED_KEYS = ("init_seed", "order_seed", "aug_seed")
# The numbers the optimizer holds per run (chaosgrid.optimizers): grid points that differ only in these and
# their seeds train as one stack, so planning packs them into one shard.
PER_RUN = ("lr", "momentum", "weight_decay")
# set through `variants`, `seeds` and `seed_source`
NOT_IN_STUDIES = ("variant", *SEED_KEYS)
BATCHING = ("batch_size", "micro_batch", "batch_order", "drop_last")  # how a run forms its steps (study 2)
IMAGE_MODELS = ("fast", "vit", "mixer")  # 2x2 whitening or 4x4 patches: images only
SIGNAL_DATASETS = ("mnist1d",)  # 1-D signals held as (N, 1, 1, L): no image corruptions, the conv1d model
FIXED_SEED = 0  # seeds that do not follow the seed index stay at this value


def values_text(value: object) -> str:
    """A value, or a list of them, as messages and docs write it: [0.1, 0.2]; "" for the empty string."""
    if isinstance(value, list):
        return f"[{', '.join(map(format_value, value))}]"
    return format_value(value) or '""'


def format_value(value: object) -> str:
    """Canonical text of a parameter value, the same in ids and paths (0.1 never becomes 1e-1)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = repr(float(value))  # numpy floats too
        return text[:-2] if text.endswith(".0") and "e" not in text else text
    return str(value)


def path_text(value: object) -> str:
    """A value as spelled in a path (a shard key, the folder of a dataset's prepared files): its canonical text,
    and the user's own code or file by a name safe in a path (`<module>-<function>`, `npz-<file stem>-<hash
    of the path>`)."""
    text = format_value(value)
    if text.startswith("npz:"):
        path = text.removeprefix("npz:")
        return f"npz-{path.rpartition('/')[2].removesuffix('.npz')}-{hashlib.sha256(path.encode()).hexdigest()[:8]}"
    return text.replace(":", "-")


def coerce(name: str, value: object) -> object:
    """Cast a value to the type of its default, so 1 and 1.0 give the same cell id."""
    default = CELL_DEFAULTS[name]
    mapping = PARAMETERS[name].mapping if name in PARAMETERS else ""
    if mapping and isinstance(value, dict):
        if set(value) != {mapping} or not isinstance(value[mapping], str):
            raise GridError(
                f"parameter {name!r} is {value!r}; as a mapping it takes one key, {mapping}: <path>"
            )
        return f"{mapping}:{value[mapping]}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise GridError(f"parameter {name!r} must be true or false, got {value!r}")
        return value
    if isinstance(default, (int, float)):
        if isinstance(value, str) and YAML11_FLOAT.fullmatch(value):
            value = float(value)  # YAML 1.1 (PyYAML, Snakemake) reads 5e-4 and 1e-3 as text
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise GridError(f"parameter {name!r} must be a number, got {value!r}")
        if isinstance(default, int) and float(value) != int(value):
            raise GridError(f"parameter {name!r} must be an integer, got {value!r}")
        return type(default)(value)
    return str(value)


OWN_KEY = re.compile(r"[a-z][a-z0-9_]*")


def validate_cell(params: dict) -> dict:
    """Return the complete, canonical cell for `params`, or raise GridError naming the bad parameter. With a
    `trainer`, keys that are not parameters are the study's own (single values: text, numbers, booleans),
    kept after the parameters in sorted order."""
    own = sorted(set(params) - set(CELL_DEFAULTS))
    if own and not params.get("trainer"):
        raise GridError(
            f"unknown parameter {own[0]!r}; known: {', '.join(CELL_DEFAULTS)} (keys of a study's own "
            f"need a `trainer` that reads them)"
        )
    for key in own:
        if not OWN_KEY.fullmatch(key) or not isinstance(params[key], (str, int, float, bool)):
            raise GridError(
                f"own key {key!r} must be a lower-case name with a single text, number or boolean value, "
                f"got {params[key]!r}"
            )
    cell = {name: coerce(name, params.get(name, default)) for name, default in CELL_DEFAULTS.items()}
    cell |= {key: params[key] for key in own}
    for name, parameter in PARAMETERS.items():
        if parameter.admits(cell[name]):
            continue
        if isinstance(parameter.values, tuple):
            own = ", or your own: package.module:function" if parameter.other else ""
            raise GridError(
                f"parameter {name!r} is {cell[name]!r}; choose one of {', '.join(parameter.values)}{own}"
            )
        raise GridError(f"parameter {name!r} is out of range: {cell[name]!r} (allowed: {parameter.values})")
    relations = {  # ranges that depend on another parameter
        "micro_batch": (cell["micro_batch"] <= cell["batch_size"], "at most batch_size"),
        "lr_min": (cell["lr_min"] <= cell["lr"], "at most lr"),
    }
    for name, (ok, allowed) in relations.items():
        if not ok:
            raise GridError(f"parameter {name!r} is out of range: {cell[name]!r} ({allowed})")
    if (cell["model"] == "conv1d") > (cell["dataset"] in SIGNAL_DATASETS):
        raise GridError(
            f"parameter 'model' is 'conv1d', a model for 1-D signals ({', '.join(SIGNAL_DATASETS)}), "
            f"but dataset is {cell['dataset']!r}"
        )
    if cell["model"] in IMAGE_MODELS and cell["dataset"] in SIGNAL_DATASETS:
        raise GridError(
            f"parameter 'model' is {cell['model']!r}, whose patches need images, but dataset "
            f"{cell['dataset']!r} holds 1-D signals"
        )
    if cell["init_epoch"] and not cell["init_from"]:
        raise GridError(
            "parameter 'init_epoch' picks a checkpoint of the 'init_from' study, but init_from is empty"
        )
    if cell["augment_copies"] and cell["augmentation"] == "none":
        raise GridError("parameter 'augment_copies' needs an 'augmentation' to copy with")
    return cell


def identity(cell: dict) -> dict:
    """The values of `cell` that differ from the published defaults (and its own keys, which have none):
    what its id and spec are made of."""
    return {k: v for k, v in cell.items() if k not in CELL_DEFAULTS or v != CELL_DEFAULTS[k]}


def cell_id(cell: dict) -> str:
    """Stable 12-hex-digit id of a canonical cell: a hash of its non-default values, sorted and formatted.

    A parameter added at its default ("off") therefore leaves every existing id unchanged.
    """
    canonical = json.dumps(
        {k: format_value(v) for k, v in sorted(identity(cell).items())}, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def seeds_for(seed_source: str, index: int) -> dict[str, int]:
    """The three seeds of seed index `index`: the sources named by `seed_source` follow it, others stay fixed."""
    varied = SEED_KEYS if seed_source == "all" else (f"{seed_source}_seed",)
    return {key: index if key in varied else FIXED_SEED for key in SEED_KEYS}
