"""Studies: turn a study's declared axes into schedulable units (shards, curve jobs).

A *cell* is one training run (`chaosgrid.cells`). A *shard* is a block of cells that differ only in their
seeds; one process trains a shard's runs together. A shard's key spells
out its axis values (``lr~0.05/width~16/seeds~0-7``) so that file presence tells what is done and a
changed axis value touches only its own shards.

This module imports neither torch nor Snakemake: the workflow uses it to plan, the trainer to run.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable
from dataclasses import replace

from chaosgrid import checkpoints as checkpoints_
from chaosgrid.cells import (
    CELL_DEFAULTS,
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
from chaosgrid.plan.sizing import Speed, shard_size
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


def expand_study(
    name: str, study: dict, finished: Iterable[str] = (), speed: Speed | None = None
) -> list[Shard]:
    """All shards of a study. List-valued parameters are axes (their product is the grid); scalars are fixed;
    `variants` name recipes that override scalars, one more axis (`variant`) whose values are their names.
    Each grid point's seeds are split into blocks (seed_blocks) of its `shard_size`, or where the study sets
    none, of the size `speed` gives its compute (plan.sizing; SHARD_SIZE without a speed), keeping the
    `finished` shard keys whose seeds are still wanted.

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
        seeds, size = seed_list(study.get("seeds", 1)), study.get("shard_size")
    resources = study.get("resources", {})
    on_gpu = resources.get("gpus", 0) > 0 or (speed is not None and speed.device.startswith("cuda"))
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
        point = {"base": base, "shifts": shifts, "severities": severities, "checkpoints": checkpoints}
        point_size = size or (
            shard_size({**point, "weights": weights}, resources, speed, on_gpu) if speed else SHARD_SIZE
        )
        for block in seed_blocks(seeds, point_size, done_at.get(prefix, ())):
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


def expand_curves(studies: dict, shards: dict[tuple[str, str], Shard]) -> dict[tuple[str, str], CurveJob]:
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


def expand_studies(
    studies: dict, finished: dict[str, Iterable[str]] | None = None, speed: Speed | None = None
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
        for s in expand_study(name, study, finished.get(name, ()), speed)
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
