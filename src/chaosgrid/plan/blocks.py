"""A study's keys that are not cell parameters, and the blocks its analyses own (`planes`, `curves`,
`ensembles`; `until` in chaosgrid.plan.until), each declared once as a `Block`: its keys' defaults and
allowed values, from which come its checks and its part of the config schema (`chaosgrid schema --write`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from chaosgrid.cells import CELL_DEFAULTS, SEED_KEYS, GridError, format_value, values_text
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


@dataclass(frozen=True)
class Key:
    """One key of a study block: its default (None: required) and the JSON schema of its value."""

    default: object
    schema: dict
    doc: str = ""

    def described(self) -> str:
        default = "required" if self.default is None else f"default: {values_text(self.default)}"
        return self.doc if "default" in self.doc else f"{self.doc} ({default})" if self.doc else default


@dataclass(frozen=True)
class Block:
    """A study block: its keys, and whether it takes further keys of its own kind (checked by its user)."""

    name: str
    doc: str
    keys: dict[str, Key]
    more_keys: dict = field(default_factory=dict)  # the schema of further keys ({}: none)

    def defaults(self) -> dict:
        return {k: key.default for k, key in self.keys.items() if key.default is not None}

    def schema(self) -> dict:
        """The block's part of the config schema."""
        properties = {k: {**key.schema, "description": key.described()} for k, key in self.keys.items()}
        required = [k for k, key in self.keys.items() if key.default is None]
        return {
            "description": self.doc,
            "type": "object",
            "properties": properties,
            **({"required": required} if required else {}),
            "additionalProperties": self.more_keys or False,
        }

    def complete(self, given: dict | None, where: str = "") -> dict:
        """`given` with the defaults filled in, or GridError naming the first unknown, missing or bad key."""
        import jsonschema

        block = {**self.defaults(), **(given or {})}
        if not self.more_keys and (unknown := sorted(set(block) - set(self.keys))):
            raise GridError(f"{where}{self.name}: unknown key {unknown[0]!r}; known: {', '.join(self.keys)}")
        for k, key in self.keys.items():
            if k not in block:
                raise GridError(f"{where}{self.name}: {k!r} is required")
            if next(jsonschema.Draft202012Validator(key.schema).iter_errors(block[k]), None):
                raise GridError(f"{where}{self.name}: {k} is {block[k]!r}")
        return block


COUNT = {"type": "integer", "minimum": 1}
PARAMETER = {"type": "string", "pattern": f"^({'|'.join(CELL_DEFAULTS)})$"}  # a cell parameter's name
# The `planes` probe set (chaosgrid.planes); the defaults are the planes as they first were, Somepalli et al.'s
# are PAPER_PLANES.
PLANES_BLOCK = Block(
    "planes",
    "the `planes` probe set (when `shifts` lists it): `triplets` planes through images of the training or test "
    "set (`images`) of three distinct classes or any (`classes`), a `resolution` x `resolution` grid widened by "
    "`margin` of the anchors' extent; the regions analysis counts `connectivity` 4- or 8-connected regions at "
    "the checkpoint of `epoch` (0: the final one). Somepalli et al.: 500 test triplets, 50, 0.1, 8-connected",
    {
        "triplets": Key(8, COUNT),
        "images": Key("train", {"enum": ["train", "test"]}),
        "classes": Key("distinct", {"enum": ["distinct", "any"]}),
        "resolution": Key(32, {"type": "integer", "minimum": 2}),
        "margin": Key(0.25, {"type": "number", "minimum": 0}),
        "connectivity": Key(4, {"enum": [4, 8]}),
        "epoch": Key(0.0, {"type": "number", "minimum": 0}),
        "compare": Key(
            "",
            {"type": "string", "pattern": f"^({'|'.join(CELL_DEFAULTS)})?$"},
            "the run column agreement matrices compare (default: the model axis, else the first)",
        ),
        "by": Key(
            [],
            {"type": "array", "items": PARAMETER},
            "the run columns that split them (default: the other axes)",
        ),
    },
)
PLANE_DEFAULTS = PLANES_BLOCK.defaults()
PAPER_PLANES = {"triplets": 500, "images": "test", "classes": "distinct", "resolution": 50, "margin": 0.1,
                "connectivity": 8}  # fmt: skip
TRIPLET_KEYS = (
    "triplets",
    "images",
    "classes",
)  # what picks the anchors (one prepared file per dataset each)
GRID_KEYS = ("resolution", "margin")  # what the shard job needs besides the anchors

# Mode-connecting curves (chaosgrid.curves): the block's own keys, then any training parameter of the bend.
CURVE_KINDS = ("line", "chain", "bezier")
CURVES_BLOCK = Block(
    "curves",
    "join pairs of this study's runs by mode-connecting curves (study 3): `pairs` pairs per grid point (seed "
    "indices two by two), `kinds` among line, chain, bezier, `points` evaluated values of t, and any parameters "
    "of the recipe that trains each bend (epochs, lr, ...); results/<study>/curves/",
    {
        "pairs": Key(1, COUNT),
        "kinds": Key(
            list(CURVE_KINDS), {"type": "array", "minItems": 1, "items": {"enum": list(CURVE_KINDS)}}
        ),
        "points": Key(31, {"type": "integer", "minimum": 2}),
    },
    more_keys=True,
)
# What a curve shares with its endpoints (the net and its training set); a `curves` block sets the rest.
CURVE_FIXED = ("variant", "dataset", "model", "width", "data_fraction", "label_noise", "label_noise_per_class",
               "init_from", "init_epoch", *SEED_KEYS)  # fmt: skip
# Values a curve's training cannot honour: evaluation and seeding choices (the pair's seeds are the endpoints'),
# and a perturbation of initial weights (the bend starts from the endpoints). A `curves` block setting one fails.
CURVE_REFUSED = {"tta": ("flip",), "seed_source": ("init", "order", "aug"), "perturbation": ("weight",)}

# The methods a study's `ensembles` block names studies for, besides its own independent runs (Ind), and
# how it ensembles them.
ENSEMBLE_ROLES = ("sse", "fge", "single_cycle")
ENSEMBLES_BLOCK = Block(
    "ensembles",
    "compare this study's independent runs (single model, Ind, NoCycle snapshots) at equal budget with the "
    "studies named here: sse (snapshot ensembles), fge (fast geometric ensembles, init_from this study), "
    "single_cycle (fresh runs of one cycle each); every study named needs probabilities",
    {
        **{role: Key("", {"type": "string"}) for role in ENSEMBLE_ROLES},
        "sse_last": Key(
            0, {"type": "integer", "minimum": 0}, "ensemble the last m snapshots of each SSE run; 0: all"
        ),
    },
)
BLOCKS = (PLANES_BLOCK, CURVES_BLOCK, ENSEMBLES_BLOCK)


def plane_spec(block: dict | None) -> dict:
    """A study's `planes` block completed with the defaults, or GridError naming a bad key or value."""
    spec = PLANES_BLOCK.complete(block)
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
    given = study.get("ensembles") or {}
    block = {k: v for k, v in given.items() if k not in ENSEMBLES_BLOCK.keys or k in ENSEMBLE_ROLES}
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
    ENSEMBLES_BLOCK.complete(given, f"study {name!r}: ")  # sse_last
    return dict(block)
