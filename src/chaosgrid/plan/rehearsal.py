"""A config made cheap enough to run end to end here, every code path it takes kept: the override behind
`chaosgrid rehearse` and the suite's smoke runs of every miniature.

A rehearsal changes only what makes a config expensive and says each change: 2 seeds (a curve pair, an
ensemble, a variance still have two runs), one value per axis (two for an axis a study compares; the largest
width and data fraction), its first and last variants (the plainest recipe and the most elaborate, as
configs list them) and one of every other model, its first severity, a few probe planes at a coarse grid,
3 points of a curve, and training shortened to about one epoch. Every length measured in epochs (`epochs`,
`init_epoch`, `every:` checkpoints, a curve's or the planes' epoch) is scaled by its study's one factor, so
a run still starts from a checkpoint its source keeps and a schedule keeps its shape. Models, widths, batch
sizes, optimizers, schedules, shifts and analyses stay as written. CIFAR-10 and its shifted sets are
replaced by stand-ins in the real formats (`chaosgrid.standin`) sized for STEPS steps per epoch of the
largest mini-batch, so that a paper config rehearses in minutes on a CPU.
"""

from __future__ import annotations

import copy
import csv
import re
from dataclasses import dataclass
from pathlib import Path

from chaosgrid.cells import CELL_DEFAULTS, format_value, values_text
from chaosgrid.checkpoints import canonical, shortened
from chaosgrid.footprint import CUDA_CONTEXT_MB, DATASETS, flops
from chaosgrid.plan.workflow import Plan, shard_memory

SEEDS = 2
EPOCHS = 1.0  # about one epoch of each study's longest training
PLANES = {"triplets": 2, "resolution": 8}  # per study: anchors and points per side of each plane, at most
LARGEST = ("width", "data_fraction")  # axes rehearsed at their largest value: where memory and shapes peak
CURVE_POINTS = 3  # t = 0, 1/2, 1: each point re-estimates BatchNorm on the training set and evaluates
STEPS = 2  # training steps per epoch of a study's largest mini-batch on stand-in data
STANDIN_TEST = 256  # stand-in test images, and images per shifted set
JOB_FILES = (("benchmarks", "tsv"), ("logs", "log"))  # a training job's benchmark table and log


@dataclass(frozen=True)
class Measured:
    """A rehearsed training job: planning's memory estimate beside the measured peak, and its throughput."""

    study: str
    shard: str
    device: str  # CPU | GPU
    estimated_mb: float
    measured_mb: float
    tflops: float


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
    """One value per axis (two for the axis its `until` block compares; the largest of LARGEST's), its first
    and last variants and the first of each other model."""
    said = []
    compared = (study.get("until") or {}).get("compare", {}).get("axis")
    for key, value in list(study.items()):
        if key in CELL_DEFAULTS and isinstance(value, list) and len(value) > 1:
            study[key] = value[:2] if key == compared else max(value) if key in LARGEST else value[0]
            said.append(f"{key} {values_text(value)} -> {values_text(study[key])}")
    variants = study.get("variants")
    if isinstance(variants, dict) and len(variants) > 2:
        names = list(variants)
        models = {variants[n].get("model", study.get("model")): n for n in reversed(names)}
        kept = [n for n in names if n in {names[0], names[-1], *models.values()}]
        study["variants"] = {n: variants[n] for n in kept}
        said.append(f"variants: {len(names)} -> {', '.join(kept)}")
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
            short = shortened(canonical(study["checkpoints"]), factor)  # every:N is written N in a config
            study["checkpoints"] = (
                float(short.removeprefix("every:")) if short.startswith("every:") else short
            )
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
    if "curves" in study and study["curves"].get("points", CURVE_POINTS + 1) > CURVE_POINTS:
        said.append(f"curves: points {study['curves'].get('points', 'default')} -> {CURVE_POINTS}")
        study["curves"]["points"] = CURVE_POINTS
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


def standin_examples(config: dict, steps: int = STEPS) -> tuple[int, int]:
    """(training, test) images of the stand-in data: `steps` steps of the largest mini-batch any study or
    variant takes (a batch smaller than its real training set: a full batch becomes the stand-in's whole set,
    in its chunks), at least `steps` * 128."""
    batches = [128]
    for study in config["studies"].values():
        real = DATASETS.get(study.get("dataset"), (None, None, 0))[2]
        for recipe in [study, *(study.get("variants") or {}).values()]:
            batch = recipe.get("batch_size", study.get("batch_size", CELL_DEFAULTS["batch_size"]))
            if batch < real:
                batches.append(batch)
    return steps * max(batches), STANDIN_TEST


def measured(plan: Plan, results: Path, engine: str, examples: tuple[int, int] | None) -> list[Measured]:
    """Each training job the rehearsal ran, as planning estimated it and as it ran: its peak memory (on a CPU
    the resident peak its log reports, getrusage's, else the max_rss Snakemake's `benchmark:` sampled, which
    misses a short job's peak; on a GPU the peak its log reports, plus the CUDA context) and its throughput (the FLOPs of its runs over their seconds), so the estimates that
    size jobs and GPU-hours are checked, not guessed."""
    found = []
    for (study, key), shard in plan.shards.items():
        table, log = (results / study / kind / f"{key}.{suffix}" for kind, suffix in JOB_FILES)
        if not (table.exists() and log.exists()):
            continue
        text = log.read_text()
        gpu = re.search(r"^peak GPU memory (\d+) MB", text, re.MULTILINE)
        estimate = shard_memory(shard, engine, examples, on_gpu=bool(gpu))
        per_run = flops(shard.base, shard.shifts, shard.severities, shard.checkpoints, examples)
        seconds = re.search(r"^phases \(s\): .*\bruns ([\d.]+)", text, re.MULTILINE)
        if not (estimate and per_run and seconds):
            continue
        resident = re.search(r"^peak memory (\d+) MB", text, re.MULTILINE)
        if gpu:
            peak = float(gpu[1]) + CUDA_CONTEXT_MB
        elif resident:
            peak = float(resident[1])
        else:
            with table.open() as f:
                peak = float(next(csv.DictReader(f, delimiter="\t"))["max_rss"])
        tflops = per_run * shard.runs / float(seconds[1]) / 1e12
        found.append(Measured(study, key, "GPU" if gpu else "CPU", estimate["mb"], peak, tflops))
    return found
