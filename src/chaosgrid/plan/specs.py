"""What a job is handed: a shard (cells that differ only in their seeds, or also in the numbers the optimizer
holds per run) and a curve job, each written as a
compact JSON spec by planning and read back, checked, by the job (`from_json`: the one place a job enters
planning)."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

from chaosgrid import checkpoints as checkpoints_
from chaosgrid.cells import (
    PER_RUN,
    SEED_KEYS,
    GridError,
    identity,
    seeds_for,
    validate_cell,
)
from chaosgrid.evalsets import check_shifts
from chaosgrid.plan.blocks import CURVE_KINDS, plane_spec, shard_planes

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
    "stack",
    "points",
}


@dataclass(frozen=True)
class Shard:
    """Cells that differ only in their seeds: `base` parameters and a block of seed indices, plus what the
    shard's job makes besides final predictions (checkpoints, weights) and where its runs start from. With
    `points`, the block of seeds of each of several grid points that differ only in numbers the optimizer
    holds per run (`cells.PER_RUN`), trained as one stack: each point's values over `base`."""

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
    stack: int = 0  # the most runs trained at once (vmap), where all do not fit the device's memory; 0: all
    points: tuple[dict, ...] = ()  # several grid points' per-run numbers (e.g. weight_decay); (): base alone

    def cells(self) -> list[dict]:
        """The shard's canonical cells: each point's, in seed order."""
        return [
            validate_cell({**self.base, **point, **seeds_for(self.base["seed_source"], i)})
            for point in self.points or ({},)
            for i in self.seed_indices
        ]

    @property
    def runs(self) -> int:
        return len(self.points or ({},)) * len(self.seed_indices)

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
            "stack": self.stack,
            "points": list(self.points),
        }
        defaults = {
            "shifts": [],
            "severities": [],
            "checkpoints": "final",
            "weights": False,
            "init_key": "",
            "probabilities": False,
            "planes": {},
            "stack": 0,
            "points": [],
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
        if type(spec.get("stack", 0)) is not int or spec.get("stack", 0) < 0:
            raise GridError(f"shard spec's 'stack' is a number of runs >= 0, got {spec['stack']!r}")
        points = spec.get("points", [])
        if not isinstance(points, list) or not all(
            isinstance(p, dict) and set(p) <= set(PER_RUN) for p in points
        ):
            raise GridError(
                f"shard spec's 'points' is a list of grid points' {', '.join(PER_RUN)}, got {points!r}"
            )
        if points and (spec.get("weights") or spec.get("init_key")):
            raise GridError("a shard spec with 'points' keeps no weights and starts from none")
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
            spec.get("stack", 0),
            tuple(points),
        )

    def plane_spec(self) -> dict:
        """The anchors and grid of the shard's `planes` probe set."""
        return plane_spec(dict(self.planes))

    def training(self) -> Shard:
        """What the shard's training job does. A shard that keeps its weights evaluates its shifted and probe
        sets afterwards, from the weights (`chaosgrid evaluate-shard`), so that adding a shift to its study
        adds evaluation jobs and re-trains nothing; its training evaluates the clean test set only."""
        return replace(self, shifts=(), severities=(), planes=()) if self.weights else self


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
