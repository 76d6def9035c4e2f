"""A config made cheap enough to run end to end here, every code path it takes kept: the override behind
`chaosgrid rehearse` and the suite's smoke runs of every miniature.

A rehearsal changes only what makes a config expensive and says each change: 2 seeds (a curve pair, an
ensemble, a variance still have two runs), one value per axis (two for an axis a study compares), its first
and last variants (the plainest recipe and the most elaborate, as configs list them), its first severity, a few probe planes at a coarse grid, and training shortened to about
one epoch. Every length measured in epochs (`epochs`, `init_epoch`, `every:` checkpoints, a curve's or the
planes' epoch) is scaled by its study's one factor, so a run still starts from a checkpoint its source keeps
and a schedule keeps its shape. Models, widths, optimizers, schedules, shifts and analyses stay as written.
"""

from __future__ import annotations

import copy

from chaosgrid.cells import CELL_DEFAULTS, format_value, values_text
from chaosgrid.checkpoints import canonical, shortened

SEEDS = 2
EPOCHS = 1.0  # about one epoch of each study's longest training
PLANES = {"triplets": 2, "resolution": 8}  # per study: anchors and points per side of each plane, at most


def rehearsal(config: dict) -> tuple[dict, list[str]]:
    """`config` with every study capped as the module says, and one line per change."""
    config = copy.deepcopy(config)
    studies = config["studies"]
    said = {name: _one_point(study) for name, study in studies.items()}
    factors = {name: _factor(study) for name, study in studies.items()}
    for name, study in studies.items():
        said[name] += _cap(study, factors[name], factors)
    return config, [f"{name}: {line}" for name, lines in said.items() for line in lines]


def _one_point(study: dict) -> list[str]:
    """One value per axis (two for the axis its `until` block compares), its first and last variants."""
    said = []
    compared = (study.get("until") or {}).get("compare", {}).get("axis")
    for key, value in list(study.items()):
        if key in CELL_DEFAULTS and isinstance(value, list) and len(value) > 1:
            study[key] = value[:2] if key == compared else value[0]
            said.append(f"{key} {values_text(value)} -> {values_text(study[key])}")
    if isinstance(study.get("variants"), dict) and len(study["variants"]) > 2:
        names = list(study["variants"])
        study["variants"] = {n: study["variants"][n] for n in (names[0], names[-1])}
        said.append(f"variants: {len(names)} -> {names[0]}, {names[-1]}")
    return said


def _factor(study: dict) -> float:
    """A study's longest training in epochs (any variant's), which becomes EPOCHS: what its lengths are
    divided by (1: it is short already)."""
    lengths = [study.get("epochs", CELL_DEFAULTS["epochs"])]
    lengths += [v["epochs"] for v in (study.get("variants") or {}).values() if "epochs" in v]
    return max(1.0, max(float(x) for x in lengths) / EPOCHS)


def _cap(study: dict, factor: float, factors: dict[str, float]) -> list[str]:
    """Shorter training (epoch lengths divided by `factor`), fewer seeds, severities and probe planes."""
    said = []

    def scaled(value, f=factor):
        return [scaled(v, f) for v in value] if isinstance(value, list) else float(value) / f

    if factor > 1:
        said.append(f"every length in epochs / {format_value(factor)} (its longest training -> {EPOCHS:g})")
        study["epochs"] = scaled(study.get("epochs", CELL_DEFAULTS["epochs"]))
        for recipe in (study.get("variants") or {}).values():
            if "epochs" in recipe:
                recipe["epochs"] = scaled(recipe["epochs"])
        if "checkpoints" in study:
            study["checkpoints"] = shortened(canonical(study["checkpoints"]), factor)
        for block in ("curves", "planes"):
            for key in ("epochs", "epoch"):
                if key in (study.get(block) or {}):
                    study[block][key] = scaled(study[block][key])
    if study.get("init_epoch"):  # the source's checkpoints moved by the source's factor
        study["init_epoch"] = scaled(study["init_epoch"], factors.get(study.get("init_from"), 1.0))
    seeds = study.get("seeds", 1)
    if "until" in study:
        until = study["until"]
        said.append(
            f"until: block {until.get('block')} -> {SEEDS}, max_seeds {until.get('max_seeds')} -> {2 * SEEDS}"
        )
        until.update(block=SEEDS, max_seeds=2 * SEEDS)
    elif (seeds if isinstance(seeds, int) else len(seeds)) > SEEDS:
        study["seeds"] = SEEDS if isinstance(seeds, int) else sorted(seeds)[:SEEDS]
        said.append(f"seeds {values_text(seeds)} -> {values_text(study['seeds'])}")
    if "curves" in study and study["curves"].get("pairs", 1) > 1:
        said.append(f"curves: pairs {study['curves']['pairs']} -> 1")
        study["curves"]["pairs"] = 1
    if len(study.get("severities", [])) > 1:
        said.append(f"severities {values_text(study['severities'])} -> {study['severities'][0]}")
        study["severities"] = study["severities"][:1]
    if "planes" in study.get("shifts", []):
        planes = study.setdefault("planes", {})
        for key, most in PLANES.items():
            if planes.get(key, most + 1) > most:
                said.append(f"planes: {key} {planes.get(key, 'default')} -> {most}")
                planes[key] = most
    return said
