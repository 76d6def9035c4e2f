"""Studies: turn a study's declared axes into schedulable units (shards, curve jobs).

A *cell* is one training run (`chaosgrid.cells`). A *shard* is a block of cells that differ only in their
seeds (or also in the optimizer's per-run numbers: several grid points' blocks); one process trains a shard's
runs together. A shard's key spells
out its axis values (``lr~0.05/width~16/seeds~0-7``) so that file presence tells what is done and a
changed axis value touches only its own shards.

This module imports neither torch nor Snakemake: the workflow uses it to plan, the trainer to run.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace

from chaosgrid import checkpoints as checkpoints_
from chaosgrid.cells import (
    CELL_DEFAULTS,
    PER_RUN,
    SEED_KEYS,
    STUDY_NAME,
    GridError,
    coerce,
    format_value,
    path_text,
    seeds_for,
    validate_cell,
)
from chaosgrid.evalsets import PLANES, check_shifts
from chaosgrid.plan.blocks import (
    CURVE_FIXED,
    CURVE_KINDS,
    CURVE_REFUSED,
    CURVES_BLOCK,
    STUDY_KEYS,
    ensemble_studies,
    plane_spec,
    shard_planes,
    study_axes,
)
from chaosgrid.plan.own import own_files
from chaosgrid.plan.seeds import SHARD_SIZE, parse_seed_text, seed_blocks, seed_list, seed_text
from chaosgrid.plan.sizing import RESOURCE_DEFAULTS, Speed, on_gpu, shard_size, stack
from chaosgrid.plan.specs import CurveJob, Shard
from chaosgrid.plan.until import parse_until


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


@dataclass(frozen=True)
class _Frame:
    """What every shard of a study shares, checked once: its parameters, axes and their values, evaluation
    sets, checkpoints and seeds."""

    name: str
    params: dict
    variants: dict
    values_of: dict  # axis -> its values, in key order
    shifts: tuple
    severities: tuple
    checkpoints: str
    weights: bool
    probabilities: bool
    planes: tuple
    seeds: list
    size: int | None  # the study's shard_size (an adaptive study's block), or None: sized by compute
    resources: dict


def _frame(name: str, study: dict) -> _Frame:
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
    try:
        planes = shard_planes(plane_spec(study.get("planes")))
    except GridError as err:
        raise GridError(f"study {name!r}: {err}") from err
    if "until" in study:  # seeds until decided: every block a shard, all planned, trained as decisions ask
        until = parse_until(name, study, axes)
        seeds, size = list(range(until.max_seeds)), until.block
    else:
        seeds, size = seed_list(study.get("seeds", 1)), study.get("shard_size")
    shifts = tuple(study.get("shifts", ()))
    return _Frame(
        name,
        params,
        variants,
        values_of,
        shifts,
        tuple(study.get("severities", ())),
        checkpoints_.canonical(study.get("checkpoints", "final")),
        bool(study.get("weights", False)),
        bool(study.get("probabilities", False)),
        planes if PLANES in shifts else (),
        seeds,
        size,
        study.get("resources", {}),
    )


def _base(frame: _Frame, values: tuple) -> dict:
    """A grid point's cell parameters (its seeds aside), checked."""
    name, point = frame.name, dict(zip(frame.values_of, values, strict=True))
    try:
        base = validate_cell({**frame.params, **point, **frame.variants[point.get("variant", "")]})
    except GridError as err:
        where = f"variant {point['variant']!r}: " if "variant" in point else ""
        raise GridError(f"study {name!r}: {where}{err}") from err
    base = {k: v for k, v in base.items() if k not in SEED_KEYS}
    check_shifts(frame.shifts, frame.severities, base["dataset"])
    try:
        own_files(base, frame.shifts)
    except GridError as err:
        raise GridError(f"study {name!r}: {err}") from err
    if base["trainer"] and (frame.checkpoints != "final" or frame.weights or base["init_from"]):
        raise GridError(
            f"study {name!r}: a `trainer` trains its runs itself: chaosgrid keeps no checkpoints "
            f"or weights of them, and starts none from another study (init_from)"
        )
    return base


def _prefix(frame: _Frame, base: dict, packed: tuple[str, list] | None = None) -> str:
    """A grid point's part of its shard keys: each axis and its value ("lr~0.05/width~16/"); with `packed`,
    (axis, values) of several points, that axis's values joined by "+" ("weight_decay~0+0.001/")."""
    spelled = {a: path_text(base[a]) for a in frame.values_of}
    if packed:
        spelled[packed[0]] = "+".join(path_text(v) for v in packed[1])
    return "".join(f"{a}~{text}/" for a, text in spelled.items())


def _shard(
    frame: _Frame, bases: list[dict], block: tuple[int, ...], speed: Speed | None, axis: str | None = None
) -> Shard:
    """A block of the seeds of one grid point, or of several that differ only on `axis` (one of the optimizer's
    per-run numbers, `cells.PER_RUN`), as a shard; with a `speed`, trained in stacks its memory holds."""
    packed = (axis, [b[axis] for b in bases]) if len(bases) > 1 else None
    shard = Shard(
        frame.name,
        f"{_prefix(frame, bases[0], packed)}seeds~{seed_text(block)}",
        bases[0],
        block,
        frame.shifts,
        frame.severities,
        frame.checkpoints,
        frame.weights,
        probabilities=frame.probabilities,
        planes=frame.planes,
        points=tuple({axis: b[axis]} for b in bases) if packed else (),
    )
    if speed is None:
        return shard
    return replace(shard, stack=stack(shard, frame.resources, speed, on_gpu(frame.resources, speed.device)))


def _size(frame: _Frame, base: dict, speed: Speed | None) -> int:
    """A grid point's shard size: the study's, or by compute (plan.sizing), or SHARD_SIZE without a speed."""
    if frame.size or speed is None:
        return frame.size or SHARD_SIZE
    threads = frame.resources.get("threads", RESOURCE_DEFAULTS["threads"])
    sets = (frame.shifts, frame.severities, frame.checkpoints)
    return shard_size(base, *sets, threads, speed, on_gpu(frame.resources, speed.device))


KEY_TEXT = 200  # the most characters of a packed axis's values in a key (a path's part holds 255)
# The "+" between packed values (not a comma: Snakemake's --target-jobs splits wildcards on commas), never the
# sign of an exponent ("1e+20").
JOINED = re.compile(r"(?<!e)\+")


def _packing(frame: _Frame, speed: Speed | None, pack: bool) -> bool:
    """Whether a study's grid points may share shards: it is sized by compute and its runs keep no weights,
    start from none (`pack`) and train with chaosgrid's recipe."""
    return pack and not frame.size and speed is not None and not frame.params.get("trainer")


def _packed_axis(frame: _Frame) -> str | None:
    """The axis along which grid points share shards: of the study's axes the optimizer holds per run, the
    one with the most values (the first of equals)."""
    axes = [a for a in frame.values_of if a in PER_RUN and len(frame.values_of[a]) > 1]
    return max(axes, key=lambda a: len(frame.values_of[a]), default=None)


def _key_points(key: str) -> tuple[str | None, list[str], tuple[int, ...] | None]:
    """The packed axis (or None), grid points (their key prefixes) and seeds a shard key names: one point, or
    several where the values of a per-run axis are joined by "+"."""
    prefix, _, text = key.rpartition("seeds~")
    parts = prefix.split("/")[:-1]
    for i, part in enumerate(parts):
        axis, _, values = part.partition("~")
        if axis in PER_RUN and len(texts := JOINED.split(values)) > 1:
            prefixes = ["".join(f"{p}/" for p in [*parts[:i], f"{axis}~{v}", *parts[i + 1 :]]) for v in texts]
            return axis, prefixes, parse_seed_text(text)
    return None, [prefix], parse_seed_text(text)


def key_runs(key: str) -> int:
    """The runs a shard key names (its grid points times its seeds), 0 for what is not a shard key."""
    _, prefixes, seeds = _key_points(key)
    return len(prefixes) * len(seeds or ())


def _packs(axis: str, bases: list[dict], per_shard: int) -> list[list[dict]]:
    """Consecutive grid points, `per_shard` at most, whose values of `axis` fit a key."""
    packs: list[list[dict]] = []
    for base in bases:
        text = "+".join(path_text(b[axis]) for b in [*packs[-1], base]) if packs else ""
        if not packs or len(packs[-1]) >= per_shard or len(text) > KEY_TEXT:
            packs.append([])
        packs[-1].append(base)
    return packs


def expand_study(
    name: str, study: dict, finished: Iterable[str] = (), speed: Speed | None = None, pack: bool = False
) -> list[Shard]:
    """All shards of a study. List-valued parameters are axes (their product is the grid); scalars are fixed;
    `variants` name recipes that override scalars, one more axis (`variant`) whose values are their names.

    Each grid point's seeds are split into blocks (seed_blocks) of its `shard_size`, or where the study sets
    none, of the size `speed` gives its compute (plan.sizing; SHARD_SIZE without a speed). The `finished`
    shard keys whose runs are all still wanted are kept as they are, larger first, whatever made them. With
    `pack` (a study whose runs keep no weights and start from none), grid points that differ only on one of
    the optimizer's per-run numbers share shards where a point's seeds are fewer than a shard sized by
    compute holds (`weight_decay~0+0.001+0.002/seeds~0-7`), trained as one stack (`cells.PER_RUN`).

    Axes appear in a shard's key in CELL_DEFAULTS order, so keys never depend on the YAML's key order.
    """
    frame = _frame(name, study)
    packing = _packing(frame, speed, pack)
    axis = _packed_axis(frame) if packing else None
    points = {}  # key prefix -> grid point, in grid order
    for values in itertools.product(*frame.values_of.values()):
        base = _base(frame, values)
        points[_prefix(frame, base)] = base
    left = {prefix: set(frame.seeds) for prefix in points}
    shards = []
    named = [(key, *_key_points(key)) for key in finished]
    for key, packed, prefixes, done in sorted(
        (n for n in named if n[3] and (pack or n[1] is None)), key=lambda n: (-len(n[2]) * len(n[3]), n[0])
    ):
        if all(p in left and set(done) <= left[p] for p in prefixes):
            for p in prefixes:
                left[p] -= set(done)
            shards.append(_shard(frame, [points[p] for p in prefixes], done, speed, packed))
    waiting: dict[tuple, list[dict]] = {}  # (the other axes' values, seed block) -> points, in grid order
    for prefix, base in points.items():
        size = _size(frame, base, speed)
        for block in seed_blocks(sorted(left[prefix]), size):
            if axis is None or len(block) * 2 > size:
                shards.append(_shard(frame, [base], block, speed))
            else:
                waiting.setdefault((_prefix(frame, {**base, axis: None}), block, size), []).append(base)
    for (_, block, size), bases in waiting.items():
        shards += [
            _shard(frame, group, block, speed, axis) for group in _packs(axis, bases, size // len(block))
        ]
    order = {prefix: i for i, prefix in enumerate(points)}
    return sorted(shards, key=lambda s: (order[_key_points(s.key)[1][0]], s.seed_indices))


def shard_of(name: str, study: dict, key: str, speed: Speed | None = None, pack: bool = False) -> Shard:
    """The shard `key` names, built from the key alone (its axis values and seeds), not from the whole grid:
    what a job's own Snakemake needs, at a cost that does not grow with the study. KeyError for a key that
    names no grid point of the study or seeds it does not want."""
    frame = _frame(name, study)
    packed, prefixes, block = _key_points(key)
    bases = []
    for prefix in prefixes:
        texts = dict(part.split("~", 1) for part in prefix.split("/") if part)
        if list(texts) != list(frame.values_of):
            raise KeyError(key)
        values = []
        for axis, candidates in frame.values_of.items():
            spelled = {path_text(coerce(axis, v) if axis in CELL_DEFAULTS else v): v for v in candidates}
            if texts[axis] not in spelled:
                raise KeyError(key)
            values.append(spelled[texts[axis]])
        bases.append(_base(frame, tuple(values)))
    if block is None or not set(block) <= set(frame.seeds) or (packed and not pack):
        raise KeyError(key)  # a packed key: of a study that may pack (it planned it, or finished it earlier)
    shard = _shard(frame, bases, block, speed, packed)
    if shard.key != key:
        raise KeyError(key)
    return shard


def expand_curves(studies: dict, shards: Shards) -> dict[tuple[str, str], CurveJob]:
    """The curve jobs of every study with a `curves` block, by (study, key): per grid point, `pairs` pairs of
    its runs (seed indices taken two by two in order), each joined by every kind of curve, trained with the
    block's cell parameters. Raises GridError naming a bad key of the block."""
    jobs = {}
    for name, study in studies.items():
        if not study.get("curves"):
            continue
        block = CURVES_BLOCK.complete(study["curves"], f"study {name!r}: ")
        overrides = {k: v for k, v in block.items() if k not in CURVES_BLOCK.keys}
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
        for key, shard in shards.study(name).items():
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


def expand_studies(
    studies: dict, finished: dict[str, Iterable[str]] | None = None, speed: Speed | None = None
) -> dict[tuple[str, str], Shard]:
    """Every study's shards by (study, key) (`finished`: each study's shard keys already done, which a grown
    study keeps), with starting points resolved and weights kept where needed (`Shards`). Raises GridError
    naming what does not match."""
    return dict(Shards(studies, finished or {}, speed).items())


class Shards(Mapping):
    """A config's shards by (study, key), each study expanded when first needed (iterating expands them all)
    and a single shard built from its key alone (`shard_of`) when its study is not: a job's own Snakemake
    looks up one shard, at a cost that does not grow with the grid.

    A shard whose runs start from another study's weights (`init_from`) names that study's shard with the
    same values on the source's axes that holds its seeds (or is split as the source's shards hold them,
    where the source grew across a partial block), and every shard of a source study keeps its weights (the
    workflow chooses the rule that writes them by study), as does every study whose runs curves join or
    whose members ensembles compare (weight distances)."""

    def __init__(self, studies: dict, finished: dict[str, Iterable[str]] | Callable, speed: Speed | None):
        self.studies, self.speed = studies, speed
        self.finished = finished if callable(finished) else lambda name: finished.get(name, ())
        self.keeping = keeping_weights(studies)
        self._expanded: dict[str, dict[str, Shard]] = {}

    def study(self, name: str) -> dict[str, Shard]:
        """A study's shards by key, expanded once."""
        if name not in self._expanded:
            shards = expand_study(name, self.studies[name], self.finished(name), self.speed, self.packs(name))
            self._expanded[name] = {s.key: s for shard in shards for s in self._finished(shard)}
        return self._expanded[name]

    def __getitem__(self, item: tuple[str, str]) -> Shard:
        name, key = item
        if name in self._expanded or name not in self.studies:
            return self.study(name)[key]
        (shard,) = self._finished(shard_of(name, self.studies[name], key, self.speed, self.packs(name)))
        return shard

    def __iter__(self):
        return ((name, key) for name in self.studies for key in self.study(name))

    def __len__(self) -> int:
        return sum(len(self.study(name)) for name in self.studies)

    def packs(self, name: str) -> bool:
        """Whether the study's grid points may share shards (`expand_study`): its runs keep no weights and
        start from none."""
        return name not in self.keeping and declared(self.studies[name], "init_from") == {""}

    def _finished(self, shard: Shard) -> list[Shard]:
        """The shard with its weights kept where needed and its start resolved (several, where it splits)."""
        if shard.study in self.keeping:
            shard = replace(shard, weights=True)
        source = shard.base["init_from"]
        if not source:
            return [shard]
        name, key = shard.study, shard.key
        if source not in self.studies or source == name:
            raise GridError(f"study {name!r}: init_from {source!r} is not another study of this config")
        axes = study_axes(self.studies[source])
        wanted = set(shard.seed_indices)
        at_point = [s for s in self.study(source).values() if all(s.base[a] == shard.base[a] for a in axes)]
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
        prefix = key.rpartition("seeds~")[0]
        pieces = []
        for match in within:  # one, or split as the source's shards are
            check_init_epoch(name, shard.base["init_epoch"], source, match)
            seeds = shard.seed_indices if holding else match.seed_indices
            piece = key if holding else f"{prefix}seeds~{seed_text(seeds)}"
            pieces.append(replace(shard, key=piece, seed_indices=seeds, init_key=match.key))
        return pieces


def declared(study: dict, parameter: str) -> set:
    """The values of a cell parameter a study declares (a value, an axis's values, its variants'), in their
    canonical form; the default where it declares none: what its shards' cells hold, without expanding."""
    found = []
    for recipe in (study.get("variants") or {"": {}}).values():
        value = recipe.get(parameter, study.get(parameter, CELL_DEFAULTS[parameter]))
        found += value if isinstance(value, list) else [value]
    return {coerce(parameter, value) for value in found}


def keeping_weights(studies: dict) -> set[str]:
    """The studies whose shards keep their weights: asked to (`weights`), started from (`init_from`), joined
    by curves, or compared by ensembles (weight distances)."""
    keeping = {name for name, study in studies.items() if study.get("weights")}
    for name, study in studies.items():
        keeping |= declared(study, "init_from") - {""}
        if study.get("curves") or study.get("ensembles"):
            keeping |= {name, *ensemble_studies(name, study, studies).values()}
    return keeping
