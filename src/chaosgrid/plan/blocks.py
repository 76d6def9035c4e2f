"""A study's keys that are not cell parameters, and the blocks its analyses own: the `planes` probe set,
`curves` and `ensembles` (the `until` block is chaosgrid.plan.until). Each block's defaults and checks live
here, once."""

from __future__ import annotations

from chaosgrid.cells import (
    CELL_DEFAULTS,
    SEED_KEYS,
    GridError,
    format_value,
)
from chaosgrid.plan.analyses import ANALYSES

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
