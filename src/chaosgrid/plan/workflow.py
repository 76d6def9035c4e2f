"""What the workflow decides before any job runs, from the config alone: every shard and curve job, the
prepared files and resources each needs, the files `snakemake` aims at, the checks that must fail at
planning (a dataset folder missing a file, a report asked of a config never run) and the lines it announces
(each study's size; warnings on memory, re-training and cores). `workflow/rules/common.smk` makes one `Plan`
and hands its answers to the rules; everything here is tested without Snakemake."""

from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from chaosgrid.cells import GridError, path_text
from chaosgrid.configs import DuplicateKeyError, check_no_duplicate_keys
from chaosgrid.downloads import DownloadError, Source, configured, missing_files, sources_for
from chaosgrid.evalsets import eval_name, eval_pairs, evaluated_sets
from chaosgrid.footprint import flops, memory_mb
from chaosgrid.plan.analyses import REPORT_PAGES, study_figures
from chaosgrid.plan.blocks import plane_spec, triplets_key
from chaosgrid.plan.paths import DATASET_FILE, prepared_folder, prepared_inputs
from chaosgrid.plan.sizing import RESOURCE_DEFAULTS, Speed, on_gpu
from chaosgrid.plan.specs import SHARD_FILES, CurveJob, Shard
from chaosgrid.plan.studies import Shards, declared, expand_curves, keeping_weights
from chaosgrid.plan.until import Until

# Resources that grow with each retry: a shard killed at its time or memory limit would otherwise be retried
# into the same wall.
SCALED_BY_ATTEMPT = ("runtime", "mem_mb")
# The `chaosgrid train-shard` option of each file a training rule reads or writes.
SHARD_FILE_OPTIONS = {
    "start": "--init-weights",
    "runs": "--runs",
    "predictions": "--predictions",
    "history": "--history",
    "weights": "--weights",
}


class PlanError(ValueError):
    """A config the workflow cannot plan, in one line naming the key or file and what to do."""


def finished_shards(results: Path, study: str) -> list[str]:
    """A study's shard keys whose runs table exists: a study that grew keeps them (plan.seeds)."""
    folder = results / study / "runs"
    return [str(path.relative_to(folder).with_suffix("")) for path in folder.rglob("*.parquet")]


@dataclass(frozen=True)
class Plan:
    """A config's studies, their shards and curve jobs by (study, key), and what the rules look up. The whole
    plan is expanded and checked at once by the main Snakemake; a job's own Snakemake (on a cluster) builds
    only the shard it runs, from its key, so its start-up does not grow with the grid (plan.studies.Shards)."""

    studies: dict
    shards: Shards
    adaptive: dict[str, Until]  # studies that add seed blocks until their comparisons are decided
    data_root: str
    sources: dict[str, Source]

    @classmethod
    def of(
        cls, config: dict, files: list[str] = (), results: Path | str = "results", whole: bool = True
    ) -> Plan:
        """The plan of a validated config (the schema's defaults filled in) read from `files`, or PlanError;
        `whole`: every study expanded and checked now, else each when first needed."""
        studies = config["studies"]
        try:
            for path in files:
                check_no_duplicate_keys(path)  # YAML keeps the last of a repeated key silently
        except DuplicateKeyError as err:
            raise PlanError(f"config {err}") from err
        try:
            sources = configured(config["downloads"])
        except DownloadError as err:
            raise PlanError(f"config {err}") from err
        try:
            finished = functools.partial(finished_shards, Path(results))
            shards = Shards(studies, finished, Speed.of(config))
            adaptive = {name: Until.of(s["until"]) for name, s in studies.items() if "until" in s}
            plan = cls(studies, shards, adaptive, os.path.normpath(config["data_root"]), sources)
            if whole:  # every shard and curve job made now: a bad config fails here, not in a job
                _ = len(plan.shards), plan.curves
        except GridError as err:
            raise PlanError(f"config studies: {err}") from err
        return plan

    @functools.cached_property
    def curves(self) -> dict[tuple[str, str], CurveJob]:
        """The curve jobs of the studies that declare curves (only they are expanded for it)."""
        return expand_curves(self.studies, self.shards)

    @functools.cached_property
    def weight_studies(self) -> list[str]:
        """Studies whose shards keep their weights (asked for, or another study starts from them)."""
        return sorted(keeping_weights(self.studies))

    @functools.cached_property
    def dataset_of_folder(self) -> dict[str, str]:
        """The datasets the shards train on, by the folder of their prepared files (cells.path_text)."""
        found = {dataset for study in self.studies.values() for dataset in declared(study, "dataset")}
        return {path_text(dataset): dataset for dataset in sorted(found)}

    @functools.cached_property
    def source_of_folder(self) -> dict[str, str]:
        return {source.folder: name for name, source in self.sources.items()}

    def study_shards(self, study: str) -> list[Shard]:
        return [shard for (s, _), shard in self.shards.items() if s == study]

    def first_block(self, study: str) -> list[str]:
        """An adaptive study's shard keys of its first look: every grid point's first block."""
        last = self.adaptive[study].block - 1
        return [k for s, k in self.shards if s == study and k.endswith(f"seeds~0-{last}")]

    def prepared(self, shard: Shard) -> dict[str, str]:
        """The prepared dataset and evaluation-set files a shard reads, by name (`data`, each set's)."""
        return dict(_prepared(shard.base["dataset"], shard.shifts, shard.severities, shard.planes))

    def published(self, dataset: str = "", shifts: tuple = ()) -> list[str]:
        """The folders of the published datasets (downloaded when missing) that make a dataset or sets."""
        return [f"{self.data_root}/{self.sources[name].folder}" for name in sources_for(dataset, shifts)]

    def curve_files(self, job: CurveJob) -> dict[str, str]:
        """A curve job's inputs: the weights files holding its two runs and the prepared dataset."""
        start, end = (f"results/{job.study}/weights/{key}.pt" for key in job.shards)
        return {
            "start": start,
            "end": end,
            "prepared": f"{prepared_folder(job.cell['dataset'])}/{DATASET_FILE}",
        }

    def resource(self, study: str, name: str, attempt: int = 1):
        """A resource of a study's jobs, from its `resources` block or the default; runtime and memory times
        the attempt number."""
        base = self.studies[study].get("resources", {}).get(name, RESOURCE_DEFAULTS[name])
        return base * attempt if name in SCALED_BY_ATTEMPT else base

    def targets(self) -> list[str]:
        """Every shard file, weights file, curve, figure and report page. Shard files are targets too:
        Snakemake treats a missing intermediate file whose consumers are up to date as done, so a deleted
        shard would not rerun."""
        shards = [
            f"results/{s}/{kind}/{key}.parquet"
            for s, key in self.shards
            if s not in self.adaptive
            for kind in SHARD_FILES
        ]
        weights = [f"results/{s}/weights/{key}.pt" for s, key in self.shards if s in self.weight_studies]
        curves = [f"results/{s}/curves/{key}.parquet" for s, key in self.curves]
        figures = [
            f"results/{study}/figures/{name}.png"
            for study, declared in self.studies.items()
            for name in study_figures(declared)
        ]
        pages = [f"results/{study}/report/{page}.html" for study in self.studies for page in REPORT_PAGES]
        return shards + weights + curves + figures + pages

    def missing_data(self) -> str | None:
        """Planning fails, before any job, when a dataset folder exists but lacks a file a shard opens: no rule
        would remake it, and every shard reading it would fail on the cluster."""
        needed: dict[str, set[str]] = {}
        for shard in self.shards.values():
            for name, files in sources_for(shard.base["dataset"], shard.shifts).items():
                needed.setdefault(name, set()).update(files)
        wanted = {n: sorted(f) for n, f in needed.items()}
        if missing := missing_files(Path(self.data_root), wanted, self.sources):
            return (
                f"{missing[0]} is missing ({len(missing)} file(s) in all), but its folder exists, so it will "
                f"not be downloaded: add the file, or delete {missing[0].parent} to have the workflow "
                f"download it again."
            )
        return None

    def announcements(self, config: dict, results: Path | str = "results") -> list[tuple[str, str]]:
        """("info" | "warning", line) for each study: its runs and shards (for one that adds seeds until
        decided, its first block and how many more may follow: a dry-run cannot list jobs that decisions
        will ask for), then whether its memory or changed evaluation sets need a word."""
        said = []
        for name in self.studies:
            shards = self.study_shards(name)
            if name in self.adaptive:
                until = self.adaptive[name]
                points = len(shards) // until.looks
                line = (
                    f"{name}: {points * until.block} runs in {points} shards first ({until.block} seeds per "
                    f"grid point), then up to {until.looks - 1} more blocks while its comparisons are "
                    f"undecided (at most {points * until.max_seeds} runs)"
                )
                said.append(("info", line))
            else:
                runs = sum(shard.runs for shard in shards)
                said.append(("info", f"{name}: {runs} runs in {len(shards)} shards"))
            if name not in self.weight_studies and shards:
                said += [
                    ("warning", line) for line in [retraining_warning(name, shards, Path(results))] if line
                ]
            said += [("warning", line) for line in [self.memory_warning(name, shards, config)] if line]
            said += [("info", line) for line in [self.gpu_cost(name, shards, config)] if line]
        return said

    def gpu_cost(self, name: str, shards: list[Shard], config: dict) -> str | None:
        """A GPU study's cost before it runs: its GPU-hours on the config's `gpu` (FLOPs from
        chaosgrid.footprint at the card's training throughput) and its largest shard's GPU memory, with the
        stacks its runs train in where they do not fit the card together."""
        if not on_gpu(self.studies[name].get("resources", {}), config["device"]) or not shards:
            return None
        total, largest = 0.0, (0.0, "", 0)
        for shard in shards:
            per_run = flops(shard.base, shard.shifts, shard.severities, shard.checkpoints)
            found = shard_memory(shard, "vmap", on_gpu=True)
            if per_run is None or found is None:
                return None  # the user's own model or data: no table knows their size
            total += per_run * shard.runs
            largest = max(largest, (found["mb"] / 1e3, shard.key, found["together"]))
        gpu = config["gpu"]
        hours = total / (gpu["tflops"] * 1e12) / 3600
        gb, key, together = largest
        runs = self.shards[name, key].runs
        held = (
            "its run"
            if runs == 1
            else f"all {runs} runs at once"
            if together == runs
            else f"its {runs} runs {together} at a time"
        )
        return (
            f"{name}: about {hours:,.0f} GPU-hours on {gpu['name']} at {gpu['tflops']:g} TFLOP/s (config "
            f"`gpu`); shard {key} needs about {gb:,.1f} of its {gpu['memory_gb']:g} GB, training {held}"
        )

    def memory_warning(self, name: str, shards: list[Shard], config: dict) -> str | None:
        """A study's largest CPU shard job estimated to need more memory than its `mem_mb`
        (chaosgrid.footprint: built-in models and datasets), said before it swaps for hours or is killed."""
        declared = self.studies[name].get("resources", {})
        if on_gpu(declared, config["device"]):
            return None
        estimates = [
            (found, shard)
            for shard in shards
            if (found := shard_memory(shard, config["execution"]["engine"]))
        ]
        if not estimates:
            return None
        found, shard = max(estimates, key=lambda pair: pair[0]["mb"])
        limit = declared.get("mem_mb", RESOURCE_DEFAULTS["mem_mb"])
        if found["mb"] <= limit:
            return None
        parts = ", ".join(
            f"{part} {found[part]:,.0f}"
            for part in ("process", "data", "models", "activations", "kept weights")
            if found[part] >= 1
        )
        return (
            f"{name}: shard {shard.key} needs about {found['mb']:,.0f} MB ({parts}; {found['parameters']:,} "
            f"parameters per run, {found['together']} run(s) in memory at once), above the study's mem_mb "
            f"of {limit:,}: set `resources: {{mem_mb: {100 * math.ceil(found['mb'] / 80)}}}` "
            f"(a cluster kills a job over it), or a smaller width, batch or shard_size"
        )


def shard_memory(
    shard: Shard, engine: str, examples: tuple[int, int] | None = None, on_gpu: bool = False
) -> dict | None:
    """The estimated peak memory of a shard's training job (chaosgrid.footprint.memory_mb), with the
    evaluation sets that job holds; `examples` for a stand-in dataset's sizes."""
    trained = shard.training()
    return memory_mb(
        shard.base,
        shard.runs,
        trained.shifts,
        trained.severities,
        shard.checkpoints,
        shard.weights,
        engine,
        examples,
        on_gpu,
        shard.stack,
    )


def retraining_warning(name: str, shards: list[Shard], results: Path) -> str | None:
    """A study that keeps no weights evaluates its shifts while training: say so when its evaluation sets
    changed since its shards were trained, which re-trains them all (one finished shard tells: the sets are
    the same in every shard)."""
    done = [p for s in shards if (p := results / name / "predictions" / f"{s.key}.parquet").exists()]
    if not done:
        return None
    was = evaluated_sets(done[0])
    now = set(eval_pairs(shards[0].shifts, shards[0].severities))
    if was is None or was == now:
        return None
    change = "; ".join(
        f"{what} {', '.join(eval_name(*pair) for pair in sorted(sets))}"
        for what, sets in (("adds", now - was), ("drops", was - now))
        if sets
    )
    return (
        f"{name}: its evaluation sets changed ({change}): its {len(done)} finished shards re-train, since it "
        f"keeps no weights; a study with `weights: true` is evaluated on new sets from its saved weights "
        f"instead, without re-training"
    )


def report_problem(studies: dict, results: Path | str = "results") -> str | None:
    """`snakemake --report` shows the studies of the config it is given: one line, before Snakemake's warnings
    for each missing file, when a study of that config has not been run (most often: the config that was run
    is not the one given)."""
    results = Path(results)
    missing = [s for s in studies if not (results / s / "tables").is_dir()]
    if not missing:
        return None
    run = sorted(p.parent.name for p in results.glob("*/tables")) or ["none"]
    return (
        f"--report: study {missing[0]!r} of this config has no results (results/{missing[0]}/tables); the "
        f"report shows the studies of the config it is given: pass the --configfile you ran (studies with "
        f"results: {', '.join(run)})"
    )


def cores_warning(cores: object, here: int | None) -> str | None:
    """More cores asked than the machine has: jobs then share cores (a shard's imports alone took 3-8x longer,
    measured); Snakemake accepts it without a word."""
    if isinstance(cores, int) and here and cores > here:
        return (
            f"--cores {cores} but this machine has {here}: jobs will share cores and run slower; "
            f"--cores {here} (or --cores all) is faster"
        )
    return None


def prepared_options(files: dict[str, str]) -> list[str]:
    """`--prepared NAME=PATH` for each prepared file a job reads (chaosgrid.plan.paths.prepared_inputs)."""
    return [word for name, path in files.items() for word in ("--prepared", f"{name}={path}")]


def one_of(names) -> str:
    """A wildcard constraint matching exactly these names (nothing when there are none)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!)"


def execution_flags(execution: dict) -> list[str]:
    """`chaosgrid train-shard` options for the config's `execution` block (how jobs run, not what they
    compute), as separate words for the rule to quote."""
    layout = "--channels-last" if execution["channels_last"] else "--contiguous"
    return ["--engine", execution["engine"], layout, "--compile" if execution["compile"] else "--no-compile"]


def shard_file_options(named: list[tuple[str, str]]) -> list[str]:
    """Each of a training job's own files (name, path) as its option and path, separate words for the shell
    command to quote (paths hold axis values and file names, which are user input)."""
    return [
        word
        for name, path in named
        if name in SHARD_FILE_OPTIONS
        for word in (SHARD_FILE_OPTIONS[name], path)
    ]


@functools.cache
def _prepared(dataset: str, shifts: tuple, severities: tuple, planes: tuple) -> tuple[tuple[str, str], ...]:
    """The prepared files of a dataset's evaluation sets by name, made once for all the shards that share
    them (a 6,000-shard plan spent ~3% of its time here, measured)."""
    folder = prepared_folder(dataset)
    key = triplets_key(plane_spec(dict(planes)))
    files = prepared_inputs(folder, eval_pairs(shifts, severities), key)
    return tuple((name, str(path)) for name, path in files.items())
