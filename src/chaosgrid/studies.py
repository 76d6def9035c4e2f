"""Studies: turn a study's declared axes into schedulable units (shards, curve jobs) and check its blocks.

A *cell* is one training run (`chaosgrid.cells`). A *shard* is a block of cells that differ only in their
seeds; one process trains a shard's runs together. A shard's key spells
out its axis values (``lr~0.05/width~16/seeds~0-7``) so that file presence tells what is done and a
changed axis value touches only its own shards.

This module imports neither torch nor Snakemake: the workflow uses it to plan, the trainer to run.
"""

from __future__ import annotations

import itertools
import json
import math
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

from chaosgrid import checkpoints as checkpoints_
from chaosgrid import plugins
from chaosgrid.analysis import ANALYSES
from chaosgrid.cells import (
    CELL_DEFAULTS,
    SEED_KEYS,
    STUDY_NAME,
    GridError,
    coerce,
    format_value,
    identity,
    path_text,
    seeds_for,
    validate_cell,
)
from chaosgrid.evalsets import OWN_PREFIX, PLANES, check_shifts
from chaosgrid.until import parse_until

# The tables every shard job writes, as results/<study>/<kind>/<shard key>.parquet.
SHARD_FILES = ("runs", "predictions", "history")


# The keys of a shard spec (Shard.to_json): anything else is a typo that would silently change the shard.
SPEC_KEYS = {
    "study",
    "key",
    "base",
    "seeds",
    "shifts",
    "severities",
    "checkpoints",
    "weights",
    "init_key",
    "probabilities",
    "planes",
}


@dataclass(frozen=True)
class Shard:
    """Cells that differ only in their seeds: `base` parameters and a block of seed indices, plus what the
    shard's job makes besides final predictions (checkpoints, weights) and where its runs start from."""

    study: str
    key: str  # e.g. "lr~0.05/width~16/seeds~0-7"; the shard's output paths are built from it
    base: dict
    seed_indices: tuple[int, ...]
    shifts: tuple[str, ...] = ()  # evaluation sets besides the clean test set
    severities: tuple[int, ...] = ()
    checkpoints: str = "final"  # final | snapshots | every:<epochs> | evenly:<count>; the final one always
    weights: bool = False  # save the checkpoints' weights (a study asks, or another study starts from them)
    init_key: str = ""  # with base["init_from"]: the key of the shard whose final weights start these runs
    probabilities: bool = False  # also store every class's probability per example (ensembles average them)
    planes: tuple[
        tuple[str, object], ...
    ] = ()  # the `planes` probe set's anchors and grid, where not the default

    def cells(self) -> list[dict]:
        """The shard's canonical cells, in seed order."""
        return [
            validate_cell({**self.base, **seeds_for(self.base["seed_source"], i)}) for i in self.seed_indices
        ]

    def to_json(self) -> str:
        """Compact spec the trainer reads: non-default base parameters, seed indices, and only the options
        that differ from their defaults, so that a new option leaves every existing spec unchanged."""
        spec = {
            "study": self.study,
            "key": self.key,
            "base": identity(self.base),
            "seeds": list(self.seed_indices),
        }
        options = {
            "shifts": list(self.shifts),
            "severities": list(self.severities),
            "checkpoints": self.checkpoints,
            "weights": self.weights,
            "init_key": self.init_key,
            "probabilities": self.probabilities,
            "planes": dict(self.planes),
        }
        defaults = {
            "shifts": [],
            "severities": [],
            "checkpoints": "final",
            "weights": False,
            "init_key": "",
            "probabilities": False,
            "planes": {},
        }
        return json.dumps({**spec, **{k: v for k, v in options.items() if v != defaults[k]}})

    @classmethod
    def from_json(cls, text: str) -> Shard:
        """The shard a spec describes, or GridError naming the key that is missing, unknown or malformed."""
        spec = json.loads(text)
        if not isinstance(spec, dict):
            raise GridError(f"a shard spec is a JSON object with base and seeds, got {spec!r}")
        if missing := sorted({"base", "seeds"} - set(spec)):
            raise GridError(f"shard spec lacks {missing[0]!r}")
        if unknown := sorted(set(spec) - SPEC_KEYS):
            raise GridError(
                f"shard spec has an unknown key {unknown[0]!r}; known: {', '.join(sorted(SPEC_KEYS))}"
            )
        if not isinstance(spec["base"], dict):
            raise GridError(f"shard spec's 'base' maps parameters to values, got {spec['base']!r}")
        seeds = spec["seeds"]
        if not isinstance(seeds, list) or not seeds or not all(type(s) is int and s >= 0 for s in seeds):
            raise GridError(f"shard spec's 'seeds' is a non-empty list of seed indices >= 0, got {seeds!r}")
        for key in ("shifts", "severities"):
            if not isinstance(spec.get(key, []), list):
                raise GridError(f"shard spec's {key!r} is a list, got {spec[key]!r}")
        base = validate_cell(spec["base"])
        base = {k: v for k, v in base.items() if k not in SEED_KEYS}
        shifts, severities = tuple(spec.get("shifts", ())), tuple(int(s) for s in spec.get("severities", ()))
        check_shifts(shifts, severities, base["dataset"])
        checkpoints = checkpoints_.canonical(spec.get("checkpoints", "final"))
        seeds = tuple(seeds)
        planes = plane_spec(spec.get("planes"))
        return cls(
            spec.get("study", "adhoc"),
            spec.get("key", ""),
            base,
            seeds,
            shifts,
            severities,
            checkpoints,
            bool(spec.get("weights", False)),
            spec.get("init_key", ""),
            bool(spec.get("probabilities", False)),
            shard_planes(planes),
        )

    def plane_spec(self) -> dict:
        """The anchors and grid of the shard's `planes` probe set."""
        return plane_spec(dict(self.planes))

    def training(self) -> Shard:
        """What the shard's training job does. A shard that keeps its weights evaluates its shifted and probe
        sets afterwards, from the weights (`chaosgrid evaluate-shard`), so that adding a shift to its study
        adds evaluation jobs and re-trains nothing; its training evaluates the clean test set only."""
        return replace(self, shifts=(), severities=(), planes=()) if self.weights else self


# A study's keys that are not cell parameters: its own, then the blocks its analyses own.
STUDY_KEYS = {
    "seeds",
    "shard_size",
    "shifts",
    "severities",
    "checkpoints",
    "weights",
    "resources",
    "variants",
    "probabilities",
    "question",
    *(block for analysis in ANALYSES.values() for block in analysis.blocks),
}
# The `planes` probe set (chaosgrid.planes): which images anchor its planes (`triplets` of them, from the
# training or test set, of three distinct classes or any), the grid on each plane, and how the regions
# analysis reads it (4- or 8-connected regions; the checkpoint at `epoch`, 0: the final one; the run column
# its agreement matrices `compare` and the columns that split them `by`, "" and []: the model axis where the
# study has one, else its first axis, and the other axes). The defaults
# are the planes as they first were; Somepalli et al.'s are PAPER_PLANES.
PLANE_DEFAULTS = {
    "triplets": 8,
    "images": "train",
    "classes": "distinct",
    "resolution": 32,
    "margin": 0.25,
    "connectivity": 4,
    "epoch": 0.0,
    "compare": "",
    "by": [],
}
PAPER_PLANES = {
    "triplets": 500,
    "images": "test",
    "classes": "distinct",
    "resolution": 50,
    "margin": 0.1,
    "connectivity": 8,
}
# what picks the anchors (one prepared file per dataset each)
TRIPLET_KEYS = (
    "triplets",
    "images",
    "classes",
)
GRID_KEYS = ("resolution", "margin")  # what the shard job needs besides the anchors
# Mode-connecting curves (chaosgrid.curves) and a `curves` block's own keys.
CURVE_KINDS = ("line", "chain", "bezier")
CURVE_DEFAULTS = {"pairs": 1, "kinds": list(CURVE_KINDS), "points": 31}
# What a curve shares with its endpoints (the net and its training set); a `curves` block sets the rest.
CURVE_FIXED = (
    "variant",
    "dataset",
    "model",
    "width",
    "data_fraction",
    "label_noise",
    "label_noise_per_class",
    "init_from",
    "init_epoch",
    *SEED_KEYS,
)
# Values a curve's training cannot honour: evaluation and seeding choices (the pair's seeds are the endpoints'),
# and a perturbation of initial weights (the bend starts from the endpoints). A `curves` block setting one fails.
CURVE_REFUSED = {"tta": ("flip",), "seed_source": ("init", "order", "aug"), "perturbation": ("weight",)}
# The methods a study's `ensembles` block names studies for, besides its own independent runs (Ind).
ENSEMBLE_ROLES = ("sse", "fge", "single_cycle")
# ... and how it ensembles them: `sse_last`, the last m snapshots of each SSE run (0: all of them).
ENSEMBLE_OPTIONS = {"sse_last": 0}


def plane_spec(block: dict | None) -> dict:
    """A study's `planes` block completed with the defaults, or GridError naming a bad key or value."""
    spec = {**PLANE_DEFAULTS, **(block or {})}
    if unknown := sorted(set(spec) - set(PLANE_DEFAULTS)):
        raise GridError(f"planes: unknown key {unknown[0]!r}; known: {', '.join(PLANE_DEFAULTS)}")
    checks = {
        "triplets": isinstance(spec["triplets"], int) and spec["triplets"] >= 1,
        "images": spec["images"] in ("train", "test"),
        "classes": spec["classes"] in ("distinct", "any"),
        "resolution": isinstance(spec["resolution"], int) and spec["resolution"] >= 2,
        "margin": isinstance(spec["margin"], (int, float)) and spec["margin"] >= 0,
        "connectivity": spec["connectivity"] in (4, 8),
        "epoch": isinstance(spec["epoch"], (int, float)) and spec["epoch"] >= 0,
        "compare": spec["compare"] == "" or spec["compare"] in CELL_DEFAULTS,
        "by": isinstance(spec["by"], list) and all(b in CELL_DEFAULTS for b in spec["by"]),
    }
    if bad := [k for k, ok in checks.items() if not ok]:
        raise GridError(f"planes: {bad[0]} is {spec[bad[0]]!r}")
    return {**spec, "margin": float(spec["margin"]), "epoch": float(spec["epoch"])}


def shard_planes(spec: dict) -> tuple[tuple[str, object], ...]:
    """What a shard's spec records of a plane spec: its anchor and grid keys that differ from the defaults
    (nothing for the default planes, so their shards' specs stay as they were)."""
    return tuple((k, spec[k]) for k in (*TRIPLET_KEYS, *GRID_KEYS) if spec[k] != PLANE_DEFAULTS[k])


def triplets_key(spec: dict) -> str:
    """The file stem of a plane spec's anchors (e.g. "test-distinct-500"): studies that pick the same share it."""
    return "-".join(format_value(spec[k]) for k in ("images", "classes", "triplets"))


def triplets_spec(key: str) -> dict:
    """The plane spec (default grid) whose anchors a triplets key names, or GridError."""
    images, _, rest = key.partition("-")
    classes, _, count = rest.partition("-")
    if not count.isdigit():
        raise GridError(f"{key!r} is not a planes key IMAGES-CLASSES-COUNT (e.g. test-distinct-500)")
    return plane_spec({"images": images, "classes": classes, "triplets": int(count)})


def seed_list(seeds: int | list[int]) -> list[int]:
    """`seeds` as declared: a count n means indices 0..n-1, a list means exactly those indices."""
    return list(range(seeds)) if isinstance(seeds, int) else sorted(set(seeds))


# Runs per shard unless a study sets `shard_size`: a study grows 8 seeds at a time without renaming a finished
# shard, and 8 runs share a process's fixed cost (about 2 s of imports and writing here, ~10% of a default-grid
# job) and let vmap stack them (1.29x at K=8 on digits, docs/benchmarks.md). Paper configs set their own.
SHARD_SIZE = 8


def seed_text(block: tuple[int, ...]) -> str:
    """A block of seed indices as it appears in a shard key: "first-last" when consecutive ("0-7", "3-3"), else
    its runs of consecutive indices ("0-2,5")."""
    runs = [[block[0], block[0]]]
    for seed in block[1:]:
        if seed == runs[-1][1] + 1:
            runs[-1][1] = seed
        else:
            runs.append([seed, seed])
    if len(runs) == 1:
        return f"{block[0]}-{block[-1]}"
    return ",".join(f"{first}-{last}" if last > first else str(first) for first, last in runs)


def parse_seed_text(text: str) -> tuple[int, ...] | None:
    """The seed indices a key's "seeds~" part names (seed_text's inverse), or None for anything else."""
    seeds = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        last = last or first
        if not (first.isdigit() and last.isdigit()) or int(last) < int(first):
            return None
        seeds += range(int(first), int(last) + 1)
    return tuple(seeds)


def seed_blocks(
    seeds: list[int], size: int, finished: Iterable[tuple[int, ...]] = ()
) -> list[tuple[int, ...]]:
    """The seed indices grouped into shards: block b holds the wanted seeds in [b·size, (b+1)·size), so that
    raising `seeds` adds blocks and never renames one. A block may already be covered in part by `finished`
    shards (their seed tuples; a study that grew from 12 to 16 seeds finished seeds~8-11 of block 1): those
    whose seeds are all still wanted are kept (larger first, never overlapping), and the block's other seeds
    make one more shard (seeds~12-15), so growth completes a partial block instead of re-training it."""
    blocks: dict[int, list[int]] = {}
    for seed in seeds:
        blocks.setdefault(seed // size, []).append(seed)
    shards = []
    for block in blocks.values():
        left = set(block)
        for done in sorted(finished, key=lambda d: (-len(d), d)):
            if set(done) <= left:
                shards.append(done)
                left -= set(done)
        if left:
            shards.append(tuple(sorted(left)))
    return sorted(shards)


def study_axes(study: dict) -> list[str]:
    """The study's axes: its list-valued cell parameters, in canonical (CELL_DEFAULTS) order, with `variant`
    (first) when the study declares `variants`; then, with a `trainer`, its own list-valued keys, in order."""
    axes = [
        k
        for k in CELL_DEFAULTS
        if isinstance(study.get(k), list) or (k == "variant" and study.get("variants"))
    ]
    own = [k for k in study if k not in CELL_DEFAULTS and k not in STUDY_KEYS] if study.get("trainer") else []
    return axes + [k for k in own if isinstance(study[k], list)]


def study_variants(name: str, study: dict) -> dict[str, dict]:
    """The study's named recipes (`variants: {name: {parameter: value}}`), checked: each sets single values of
    parameters that are not axes of the study. {"": {}} when it declares none."""
    variants = study.get("variants") or {}
    if not isinstance(variants, dict):
        raise GridError(f"study {name!r}: 'variants' must map names to parameter settings")
    if "variant" in study:
        raise GridError(f"study {name!r}: name recipes under 'variants', not with 'variant'")
    for variant, overrides in variants.items():
        if not STUDY_NAME.fullmatch(str(variant)) or not isinstance(overrides, dict):
            raise GridError(
                f"study {name!r}: variant {variant!r} needs a name of letters, digits and _ and a "
                f"mapping of parameters"
            )
        for key, value in overrides.items():
            if (
                key in STUDY_KEYS
                or key == "variant"
                or isinstance(value, list)
                or isinstance(study.get(key), list)
            ):
                raise GridError(
                    f"study {name!r}: variant {variant!r} sets {key!r}; a variant sets single cell "
                    f"parameters that are not axes of the study"
                )
    return variants or {"": {}}


def expand_study(name: str, study: dict, finished: Iterable[str] = ()) -> list[Shard]:
    """All shards of a study. List-valued parameters are axes (their product is the grid); scalars are fixed;
    `variants` name recipes that override scalars, one more axis (`variant`) whose values are their names.
    Each grid point's seeds are split into blocks (seed_blocks), keeping the `finished` shard keys that fit.

    Axes appear in a shard's key in CELL_DEFAULTS order, so keys never depend on the YAML's key order.
    """
    params = {k: v for k, v in study.items() if k not in STUDY_KEYS}
    for seed_key in SEED_KEYS:
        if seed_key in params:
            raise GridError(f"study {name!r}: set 'seeds' and 'seed_source', not {seed_key!r}")
    variants = study_variants(name, study)
    axes = study_axes(study)
    values_of = {a: list(variants) if a == "variant" else params[a] for a in axes}
    for axis in set(axes) - set(CELL_DEFAULTS):  # an own axis of numbers is all floats if any is ([0, 0.1])
        if any(isinstance(v, float) for v in values_of[axis]) and not any(
            isinstance(v, (bool, str)) for v in values_of[axis]
        ):
            values_of[axis] = [float(v) for v in values_of[axis]]
    for axis in axes:
        if not values_of[axis]:
            raise GridError(f"study {name!r}: axis {axis!r} is empty")
        spelled = [format_value(coerce(axis, v)) if axis in CELL_DEFAULTS else v for v in values_of[axis]]
        repeated = sorted({v for v in spelled if spelled.count(v) > 1})
        if repeated:
            raise GridError(f"study {name!r}: axis {axis!r} lists {repeated[0]} more than once")
    shifts, severities = tuple(study.get("shifts", ())), tuple(study.get("severities", ()))
    checkpoints = checkpoints_.canonical(study.get("checkpoints", "final"))
    weights, probabilities = bool(study.get("weights", False)), bool(study.get("probabilities", False))
    try:
        planes = shard_planes(plane_spec(study.get("planes")))
    except GridError as err:
        raise GridError(f"study {name!r}: {err}") from err
    if "until" in study:  # seeds until decided: every block a shard, all planned, trained as decisions ask
        until = parse_until(name, study, axes)
        seeds, size = list(range(until.max_seeds)), until.block
    else:
        seeds, size = seed_list(study.get("seeds", 1)), int(study.get("shard_size", SHARD_SIZE))
    done_at: dict[str, list[tuple[int, ...]]] = {}  # grid point (key prefix) -> its finished shards' seeds
    for key in finished:
        prefix, _, text = key.rpartition("seeds~")
        if (done := parse_seed_text(text)) is not None:
            done_at.setdefault(prefix, []).append(done)
    shards = []
    for values in itertools.product(*values_of.values()):
        point = dict(zip(axes, values, strict=True))
        try:
            base = validate_cell({**params, **point, **variants[point.get("variant", "")]})
        except GridError as err:
            where = f"variant {point['variant']!r}: " if "variant" in point else ""
            raise GridError(f"study {name!r}: {where}{err}") from err
        base = {k: v for k, v in base.items() if k not in SEED_KEYS}
        check_shifts(shifts, severities, base["dataset"])
        try:
            own_files(base, shifts)
        except GridError as err:
            raise GridError(f"study {name!r}: {err}") from err
        if base["trainer"] and (checkpoints != "final" or weights or base["init_from"]):
            raise GridError(
                f"study {name!r}: a `trainer` trains its runs itself: chaosgrid keeps no checkpoints "
                f"or weights of them, and starts none from another study (init_from)"
            )
        prefix = "".join(f"{a}~{path_text(base[a])}/" for a in axes)
        for block in seed_blocks(seeds, size, done_at.get(prefix, ())):
            key = f"{prefix}seeds~{seed_text(block)}"
            shards.append(
                Shard(
                    name,
                    key,
                    base,
                    block,
                    shifts,
                    severities,
                    checkpoints,
                    weights,
                    probabilities=probabilities,
                    planes=planes if PLANES in shifts else (),
                )
            )
    return shards


NPZ_ARRAYS = ("x_train", "y_train", "x_test", "y_test")
# The positional arguments each kind of the user's own code is called with (docs/your-own-experiments.md).
CALLED_WITH = {"model": ("in_shape", "num_classes", "width"), "dataset": (), "trainer": ("params", "data")}


def own_files(cell: dict, shifts: tuple[str, ...] = ()) -> list[str]:
    """The files of the user's own code and data that a cell uses (a model or dataset named
    "package.module:function", a dataset "npz:<path>", holding the `own_<set>` evaluation sets of `shifts`,
    the files a trainer command names), checked without importing or running anything: GridError names the parameter and the file. The workflow makes them
    inputs of the shards that use them."""
    files = []
    for key in ("model", "dataset", "trainer"):
        value = cell.get(key, "")
        if value.startswith("npz:"):
            path = Path(value.removeprefix("npz:"))
            if not path.is_file():
                raise GridError(
                    f"parameter {key!r}: no file {path} (relative paths are from the working directory)"
                )
            try:
                with zipfile.ZipFile(path) as archive:
                    members = {Path(m).stem for m in archive.namelist()}
            except zipfile.BadZipFile as err:
                raise GridError(f"parameter {key!r}: {path} is not an .npz file ({err})") from err
            own_sets = [
                f"{axis}_{s.removeprefix(OWN_PREFIX)}"
                for s in shifts
                if s.startswith(OWN_PREFIX)
                for axis in "xy"
            ]
            if missing := [a for a in (*NPZ_ARRAYS, *own_sets) if a not in members]:
                raise GridError(
                    f"parameter {key!r}: {path} has no array {missing[0]!r}; it needs "
                    f"{', '.join((*NPZ_ARRAYS, *own_sets))}"
                )
            files.append(str(path))
        elif plugins.is_reference(value):
            try:
                files.append(str(plugins.checked_source(value, CALLED_WITH[key])))
            except plugins.PluginError as err:
                raise GridError(f"parameter {key!r}: {err}") from err
        elif key == "trainer" and value.startswith("command:"):
            try:
                files += plugins.command_files(
                    value.removeprefix("command:"), frozenset(cell) | set(SEED_KEYS)
                )
            except plugins.PluginError as err:
                raise GridError(f"parameter {key!r}: {err}") from err
    return files


@dataclass(frozen=True)
class CurveJob:
    """Curves between two runs of a study at one grid point: their seed indices, the keys of the shards whose
    weights hold them, and the recipe that trains each bend (the first run's cell with the `curves` block's
    parameters)."""

    study: str
    key: str  # e.g. "lr~0.05/pair~0-1"; the job's output path is built from it
    cell: dict
    seeds: tuple[int, int]
    shards: tuple[str, str]
    kinds: tuple[str, ...]
    points: int  # evaluated points of t, evenly spaced over [0, 1]

    def to_json(self) -> str:
        return json.dumps(
            {
                "study": self.study,
                "key": self.key,
                "cell": identity(self.cell),
                "seeds": list(self.seeds),
                "kinds": list(self.kinds),
                "points": self.points,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> CurveJob:
        spec = json.loads(text)
        kinds = tuple(spec.get("kinds", CURVE_KINDS))
        if not set(kinds) <= set(CURVE_KINDS) or int(spec.get("points", 31)) < 2:
            raise GridError(f"curve spec: kinds must be among {', '.join(CURVE_KINDS)} and points >= 2")
        return cls(
            spec.get("study", "adhoc"),
            spec.get("key", ""),
            validate_cell(spec.get("cell", {})),
            tuple(spec["seeds"]),
            ("", ""),
            kinds,
            int(spec.get("points", 31)),
        )


def expand_curves(studies: dict, shards: dict[tuple[str, str], Shard]) -> dict[tuple[str, str], CurveJob]:
    """The curve jobs of every study with a `curves` block, by (study, key): per grid point, `pairs` pairs of
    its runs (seed indices taken two by two in order), each joined by every kind of curve, trained with the
    block's cell parameters. Raises GridError naming a bad key of the block."""
    jobs = {}
    for name, study in studies.items():
        if not study.get("curves"):
            continue
        block = {**CURVE_DEFAULTS, **study["curves"]}
        overrides = {k: v for k, v in block.items() if k not in CURVE_DEFAULTS}
        if bad := sorted(k for k in overrides if k not in CELL_DEFAULTS or k in CURVE_FIXED):
            raise GridError(
                f"study {name!r}: curves sets {bad[0]!r}; besides pairs, kinds and points it sets "
                f"training parameters, not what makes the endpoints ({', '.join(CURVE_FIXED)})"
            )
        if unused := sorted(k for k, v in overrides.items() if v in CURVE_REFUSED.get(k, ())):
            raise GridError(
                f"study {name!r}: curves sets {unused[0]!r}, which a curve's training does not use "
                f"(the bend trains from the endpoints' weights; its points are evaluated plainly)"
            )
        if not block["kinds"] or not set(block["kinds"]) <= set(CURVE_KINDS):
            raise GridError(
                f"study {name!r}: curves kinds {block['kinds']!r}; choose from {', '.join(CURVE_KINDS)}"
            )
        seeds = seed_list(study.get("seeds", 1))
        pairs = int(block["pairs"])
        if not 1 <= pairs <= len(seeds) // 2 or int(block["points"]) < 2:
            raise GridError(
                f"study {name!r}: curves needs 1..{len(seeds) // 2} pairs of its {len(seeds)} seeds "
                f"and points >= 2"
            )
        holders: dict[str, dict[int, str]] = {}  # grid point (key prefix) -> seed index -> shard key
        bases: dict[str, dict] = {}
        for (study_name, key), shard in shards.items():
            if study_name == name:
                prefix = key.rpartition("seeds~")[0]
                holders.setdefault(prefix, {}).update(dict.fromkeys(shard.seed_indices, key))
                bases[prefix] = shard.base
        for prefix, holder in holders.items():
            for a, b in zip(seeds[0 : 2 * pairs : 2], seeds[1 : 2 * pairs : 2], strict=True):
                try:
                    cell = validate_cell(
                        {**bases[prefix], **seeds_for(bases[prefix]["seed_source"], a), **overrides}
                    )
                except GridError as err:
                    raise GridError(f"study {name!r}: curves: {err}") from err
                key = f"{prefix}pair~{a}-{b}"
                jobs[name, key] = CurveJob(
                    name,
                    key,
                    cell,
                    (a, b),
                    (holder[a], holder[b]),
                    tuple(block["kinds"]),
                    int(block["points"]),
                )
    return jobs


def check_init_epoch(name: str, epoch: float, source: str, shard: Shard) -> None:
    """GridError when runs would start from a checkpoint of `source` (its shard `shard`) that it does not keep:
    found at planning, not by every shard job after its source trained."""
    kept = checkpoints_.epochs(shard.checkpoints, shard.base["epochs"])
    if epoch and kept is not None and not any(math.isclose(epoch, k, rel_tol=1e-9) for k in kept):
        raise GridError(
            f"study {name!r}: init_epoch {format_value(epoch)}: study {source!r} keeps no checkpoint at "
            f"that epoch (it keeps epochs {', '.join(format_value(k) for k in kept)}); add it to "
            f"{source!r}'s checkpoints (e.g. checkpoints: {format_value(epoch)})"
        )


def ensemble_studies(name: str, study: dict, studies: dict) -> dict[str, str]:
    """The studies a study's `ensembles` block names for each method (sse, fge, single_cycle), checked."""
    block = {k: v for k, v in (study.get("ensembles") or {}).items() if k not in ENSEMBLE_OPTIONS}
    last = (study.get("ensembles") or {}).get("sse_last", 0)
    if not isinstance(last, int) or isinstance(last, bool) or last < 0:
        raise GridError(
            f"study {name!r}: ensembles sse_last is {last!r}; give a number of snapshots (0: all)"
        )
    for member in [name, *block.values()] if block else []:
        if member in studies and study_axes(studies[member]):
            raise GridError(
                f"study {name!r}: ensembles compare studies of one grid point each, but "
                f"{member!r} has axes {', '.join(study_axes(studies[member]))}"
            )
        if member in studies and not studies[member].get("probabilities"):
            raise GridError(
                f"study {name!r}: ensembles average class probabilities: set `probabilities: true` "
                f"in study {member!r}"
            )
    for role, other in block.items():
        if role not in ENSEMBLE_ROLES:
            raise GridError(
                f"study {name!r}: ensembles names {role!r}; choose from {', '.join(ENSEMBLE_ROLES)}"
            )
        if other not in studies or other == name:
            raise GridError(
                f"study {name!r}: ensembles {role}: {other!r} is not another study of this config"
            )
    return dict(block)


def expand_studies(
    studies: dict, finished: dict[str, Iterable[str]] | None = None
) -> dict[tuple[str, str], Shard]:
    """Every study's shards by (study, key) (`finished`: each study's shard keys already done, which a grown
    study keeps), with starting points resolved: a shard whose runs start from
    another study's weights (`init_from`) names that study's shard with the same values on the source's
    axes that holds its seeds (or is split as the source's shards hold them, where the source grew across a
    partial block), and every shard of a source study keeps its weights (the workflow chooses the
    rule that writes them by study), as does every study whose runs curves join or whose members ensembles
    compare (weight distances). Raises GridError naming what does not match."""
    finished = finished or {}
    shards = {
        (name, s.key): s
        for name, study in studies.items()
        for s in expand_study(name, study, finished.get(name, ()))
    }
    for (name, key), shard in list(shards.items()):
        source = shard.base["init_from"]
        if not source:
            continue
        if source not in studies or source == name:
            raise GridError(f"study {name!r}: init_from {source!r} is not another study of this config")
        axes = study_axes(studies[source])
        wanted = set(shard.seed_indices)
        at_point = [
            s for (n, _), s in shards.items() if n == source and all(s.base[a] == shard.base[a] for a in axes)
        ]
        # one source shard holding every seed (its weights file has each run), or the source's shards that
        # together hold exactly these seeds (it grew across a partial block: 8-11, then 12-15)
        holding = [s for s in at_point if wanted <= set(s.seed_indices)][:1]
        within = holding or [s for s in at_point if set(s.seed_indices) <= wanted]
        if sorted(i for s in within for i in s.seed_indices) != sorted(wanted) and not holding:
            values = ", ".join(f"{a}={format_value(shard.base[a])}" for a in axes)
            raise GridError(
                f"study {name!r}: init_from {source!r} has no shards with {values or 'its values'} "
                f"that hold seeds {seed_text(shard.seed_indices)} (shard {key})"
            )
        if holding:
            check_init_epoch(name, shard.base["init_epoch"], source, holding[0])
            shards[name, key] = replace(shard, init_key=holding[0].key)
            continue
        del shards[name, key]  # split as the source's shards are
        prefix = key.rpartition("seeds~")[0]
        for match in within:
            check_init_epoch(name, shard.base["init_epoch"], source, match)
            piece = f"{prefix}seeds~{seed_text(match.seed_indices)}"
            shards[name, piece] = replace(
                shard, key=piece, seed_indices=match.seed_indices, init_key=match.key
            )
    sources = {s.base["init_from"] for s in shards.values()}
    for name, study in studies.items():  # curve endpoints and ensemble members keep weights too
        if study.get("curves") or study.get("ensembles"):
            sources |= {name, *ensemble_studies(name, study, studies).values()}
    return {(n, k): replace(s, weights=True) if n in sources else s for (n, k), s in shards.items()}
