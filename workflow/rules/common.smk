# Grid expansion and input functions shared by the rules. Planning imports chaosgrid.studies and the analysis
# declarations only (no torch, no pandas).
import functools
import json
import math
import os
import re
import shlex
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake_interface_executor_plugins.settings import DeploymentMethod

from chaosgrid.plan.analyses import ANALYSES, REPORT_PAGES, REPORT_TABLES, STUDY_FIGURES, study_figures
from chaosgrid.downloads import DownloadError, configured, missing_files, sources_for
from chaosgrid.cells import GridError, path_text
from chaosgrid.configs import DuplicateKeyError, check_no_duplicate_keys
from chaosgrid.evalsets import CLEAN, eval_name, eval_pairs, evaluated_sets
from chaosgrid.plan.specs import SHARD_FILES
from chaosgrid.plan.studies import expand_curves, expand_studies
from chaosgrid.plan.own import own_files
from chaosgrid.plan.blocks import plane_spec, study_axes, triplets_key
from chaosgrid.footprint import memory_mb
from chaosgrid.plan.paths import DATASET_FILE, PREPARED, prepared_files
from chaosgrid.plan.until import Until

RESOURCE_DEFAULTS = {"threads": 1, "mem_mb": 2000, "runtime": 30, "gpus": 0}


def check_config_files():
    """Refuse a config file that names a key twice in a mapping (YAML keeps the last silently)."""
    for path in workflow.overwrite_configfiles or ["config/config.yaml"]:
        try:
            check_no_duplicate_keys(path)
        except DuplicateKeyError as err:
            raise WorkflowError(f"config {err}") from err


def finished_shards(studies):
    """Each study's shard keys whose runs table exists: a study that grew keeps them (studies.seed_blocks)."""
    return {
        name: [
            str(path.relative_to(folder).with_suffix(""))
            for path in folder.rglob("*.parquet")
        ]
        for name in studies
        if (folder := Path("results", name, "runs")).is_dir()
    }


def _expand_all(studies):
    """Every study's shards and curve jobs, or a WorkflowError naming the bad key."""
    try:
        shards = expand_studies(studies, finished_shards(studies))
        return shards, expand_curves(studies, shards)
    except GridError as err:
        raise WorkflowError(f"config studies: {err}") from err


def point_jobs_at_chaosgrid():
    """Jobs call `chaosgrid`; put the folder of Snakemake's own Python first on their PATH, where planning
    has just imported chaosgrid from, so a job needs nothing on the user's PATH (`.venv/bin/snakemake` works
    without activating the venv). Inside a conda environment or container, that environment's own
    `chaosgrid` is meant: PATH is left to it, and a new conda environment installs this checkout
    (envs/chaosgrid.post-deploy.sh reads CHAOSGRID_CHECKOUT)."""
    os.environ["CHAOSGRID_CHECKOUT"] = workflow.basedir
    isolated = {DeploymentMethod.CONDA, DeploymentMethod.APPTAINER}
    if not isolated & set(workflow.deployment_settings.deployment_method):
        bin_dir = shlex.quote(os.path.dirname(sys.executable))
        shell.prefix(f'set -euo pipefail; export PATH={bin_dir}:"$PATH"; ')


def _data_sources(overrides):
    try:
        return configured(overrides)
    except DownloadError as err:
        raise WorkflowError(f"config {err}") from err


point_jobs_at_chaosgrid()
check_config_files()
SHARDS, CURVES = _expand_all(config["studies"])
DATA_ROOT = os.path.normpath(config["data_root"])
DATA_SOURCES = _data_sources(config["downloads"])
SOURCE_OF_FOLDER = {source.folder: name for name, source in DATA_SOURCES.items()}


def check_data_folders():
    """Fail at planning, before any job, when a dataset folder exists but lacks a file a shard opens: no rule
    would remake it, and every shard reading it would fail on the cluster."""
    needed = {}
    for shard in SHARDS.values():
        for name, files in sources_for(shard.base["dataset"], shard.shifts).items():
            needed.setdefault(name, set()).update(files)
    missing = missing_files(
        Path(DATA_ROOT), {n: sorted(f) for n, f in needed.items()}, DATA_SOURCES
    )
    if missing:
        raise WorkflowError(
            f"{missing[0]} is missing ({len(missing)} file(s) in all), but its folder exists, so it will not be "
            f"downloaded: add the file, or delete {missing[0].parent} to have the workflow download it again."
        )


check_data_folders()


def check_report_has_results():
    """`snakemake --report` shows the studies of the config it is given: refuse in one line, before Snakemake's
    warnings for each missing file, when a study of that config has not been run (most often: the config that
    was run is not the one given)."""
    if not (workflow.is_main_process and "--report" in sys.argv):
        return
    missing = [
        s for s in config["studies"] if not Path("results", s, "tables").is_dir()
    ]
    if missing:
        run = sorted(p.parent.name for p in Path("results").glob("*/tables")) or [
            "none"
        ]
        raise WorkflowError(
            f"--report: study {missing[0]!r} of this config has no results (results/{missing[0]}/tables); "
            f"the report shows the studies of the config it is given: pass the --configfile you ran "
            f"(studies with results: {', '.join(run)})"
        )


check_report_has_results()


def warn_about_cores():
    """More cores asked than the machine has: jobs then share cores (a shard's imports alone took 3-8x longer,
    measured); Snakemake accepts it without a word."""
    cores, here = workflow.resource_settings.cores, os.cpu_count()
    local = (
        workflow.is_main_process and workflow.local_exec
    )  # a cluster runs jobs elsewhere
    if local and isinstance(cores, int) and here and cores > here:
        logger.warning(
            f"--cores {cores} but this machine has {here}: jobs will share cores and run slower; "
            f"--cores {here} (or --cores all) is faster"
        )


warn_about_cores()
# The datasets the shards train on, by the folder of their prepared files (the user's own by a path-safe name).
DATASET_OF_FOLDER = {
    path_text(shard.base["dataset"]): shard.base["dataset"] for shard in SHARDS.values()
}
# Studies whose shards keep their weights (asked for, or another study starts from them).
WEIGHT_STUDIES = sorted(
    {study for (study, _), shard in SHARDS.items() if shard.weights}
)


wildcard_constraints:
    study=r"[A-Za-z0-9_]+",
    shard=r"([a-z_]+~[^/~]+/)*seeds~\d+(-\d+)?(,\d+(-\d+)?)*",
    pair=r"([a-z_]+~[^/~]+/)*pair~\d+-\d+",


def one_of(names):
    """A wildcard constraint matching exactly these names (nothing when there are none)."""
    return "|".join(re.escape(n) for n in names) if names else "(?!)"


# Studies that add seed blocks until their comparisons are decided (chaosgrid.analysis.sequential), by name.
ADAPTIVE = {
    name: Until.of(study["until"])
    for name, study in config["studies"].items()
    if "until" in study
}


def announce_studies():
    """A line per study when planning: its runs and shards; for one that adds seeds until decided, its first
    block and how many more may follow (a dry-run cannot list jobs that decisions will ask for).
    """
    if not workflow.is_main_process:
        return
    for name in config["studies"]:
        shards = [shard for (s, _), shard in SHARDS.items() if s == name]
        if name in ADAPTIVE:
            until, points = ADAPTIVE[name], len(shards) // ADAPTIVE[name].looks
            logger.info(
                f"{name}: {points * until.block} runs in {points} shards first ({until.block} seeds per grid point), "
                f"then up to {until.looks - 1} more blocks while its comparisons are undecided "
                f"(at most {points * until.max_seeds} runs)"
            )
        else:
            runs = sum(len(shard.seed_indices) for shard in shards)
            logger.info(f"{name}: {runs} runs in {len(shards)} shards")
        if name not in WEIGHT_STUDIES and shards:
            warn_about_retraining(name, shards)
        warn_about_memory(name, shards)


def warn_about_memory(name, shards):
    """Say when a study's largest CPU shard job is estimated to need more memory than its `mem_mb`
    (`chaosgrid.footprint`: built-in models and datasets), before it swaps for hours or is killed.
    """
    declared = config["studies"][name].get("resources", {})
    on_gpu = declared.get("gpus", 0) > 0 or str(
        config["device"]
    ).startswith("cuda")
    if on_gpu:
        return
    engine = config["execution"]["engine"]
    estimates = []
    for shard in shards:
        trained = shard.training()  # the sets its training job holds
        found = memory_mb(
            shard.base,
            len(shard.seed_indices),
            trained.shifts,
            trained.severities,
            shard.checkpoints,
            shard.weights,
            engine,
        )
        if found:
            estimates.append((found, shard))
    if not estimates:
        return
    found, shard = max(estimates, key=lambda pair: pair[0]["mb"])
    limit = declared.get("mem_mb", RESOURCE_DEFAULTS["mem_mb"])
    if found["mb"] > limit:
        parts = ", ".join(
            f"{part} {found[part]:,.0f}"
            for part in ("process", "data", "models", "activations", "kept weights")
            if found[part] >= 1
        )
        logger.warning(
            f"{name}: shard {shard.key} needs about {found['mb']:,.0f} MB ({parts}; {found['parameters']:,} "
            f"parameters per run, {found['together']} run(s) in memory at once), above the study's mem_mb "
            f"of {limit:,}: set `resources: {{mem_mb: {100 * math.ceil(found['mb'] / 80)}}}` "
            f"(a cluster kills a job over it), or a smaller width, batch or shard_size"
        )


def warn_about_retraining(name, shards):
    """A study that keeps no weights evaluates its shifts while training: say so when its evaluation sets
    changed since its shards were trained, which re-trains them all (one finished shard tells: the sets are
    the same in every shard)."""
    done = [
        path
        for shard in shards
        if (
            path := Path("results", name, "predictions", f"{shard.key}.parquet")
        ).exists()
    ]
    if not done:
        return
    was = evaluated_sets(done[0])
    now = set(eval_pairs(shards[0].shifts, shards[0].severities))
    if was is not None and was != now:
        change = "; ".join(
            f"{what} {', '.join(eval_name(*pair) for pair in sorted(sets))}"
            for what, sets in (("adds", now - was), ("drops", was - now))
            if sets
        )
        logger.warning(
            f"{name}: its evaluation sets changed ({change}): its {len(done)} finished shards re-train, "
            f"since it keeps no weights; a study with `weights: true` is evaluated on new sets from its "
            f"saved weights instead, without re-training"
        )


def adaptive_keys(study, looks=None):
    """The shard keys of an adaptive study's first `looks` looks (all of them: until every comparison has
    stopped): every grid point's first block, then after each look the next block of the points its
    decision continues. Each look's decision is a checkpoint: Snakemake plans up to the first not yet made.
    """
    until = ADAPTIVE[study]
    keys = [
        k for s, k in SHARDS if s == study and k.endswith(f"seeds~0-{until.block - 1}")
    ]
    for look in range(1, (until.looks if looks is None else looks) + 1):
        decision = checkpoints.decide.get(study=study, look=look).output[0]
        going = json.loads(Path(decision).read_text())["continue"]
        if not going:
            break
        first = look * until.block
        keys += [f"{prefix}seeds~{first}-{first + until.block - 1}" for prefix in going]
    return keys


announce_studies()


def study_shard_keys(study):
    """The shard keys of a study that its tables read: all of them, or an adaptive study's trained so far."""
    if study in ADAPTIVE:
        return adaptive_keys(study)
    return [key for s, key in SHARDS if s == study]


def shard_files(kind):
    """Input function: the `kind` (runs or predictions) file of every shard of the wildcard's study."""

    def files(wildcards):
        return [
            f"results/{wildcards.study}/{kind}/{key}.parquet"
            for key in study_shard_keys(wildcards.study)
        ]

    return files


def look_files(kind):
    """Input function of a look's decision: the `kind` files of the shards trained through that look."""

    def files(wildcards):
        keys = adaptive_keys(wildcards.study, int(wildcards.look) - 1)
        return [f"results/{wildcards.study}/{kind}/{key}.parquet" for key in keys]

    return files


def start_weights(wildcards):
    """Input function: the weights file a shard's runs start from (`init_from`), or nothing."""
    shard = SHARDS[wildcards.study, wildcards.shard]
    source = shard.base["init_from"]
    return {"start": f"results/{source}/weights/{shard.init_key}.pt"} if source else {}


def published_folders(dataset="", shifts=()):
    """The folders of the published datasets (downloaded when missing) that make a dataset or shifted sets."""
    return [
        ancient(f"{DATA_ROOT}/{DATA_SOURCES[name].folder}")
        for name in sources_for(dataset, shifts)
    ]


def training(wildcards):
    """The wildcards' shard as its training job runs it (`Shard.training`: one that keeps its weights
    evaluates its shifts in a job of its own)."""
    return SHARDS[wildcards.study, wildcards.shard].training()


def prepared_inputs(wildcards):
    """Input function: the prepared dataset and shifted evaluation sets a shard's training reads.
    `ancient`: remaking one (the same bits) never re-runs a shard that is done."""
    return _prepared_for(training(wildcards))


def evaluated_inputs(wildcards):
    """Input function: the prepared dataset and every evaluation set of a shard that keeps its weights."""
    return _prepared_for(SHARDS[wildcards.study, wildcards.shard])


def _prepared_for(shard):
    return _prepared(
        shard.base["dataset"], shard.shifts, shard.severities, shard.planes
    )


@functools.cache
def _prepared(dataset, shifts, severities, planes):
    """The prepared files of a dataset's evaluation sets, made once for all the shards that share them (a
    6,000-shard plan spent ~3% of its time here, measured)."""
    folder = f"{PREPARED}/{path_text(dataset)}"
    pairs = eval_pairs(shifts, severities)
    planes = triplets_key(plane_spec(dict(planes)))
    return tuple(str(path) for path in prepared_files(folder, pairs, planes))


def own_inputs(wildcards):
    """Input function: the files of the user's own model or dataset a shard uses, so that editing one re-runs
    exactly the shards that use it."""
    return own_files(SHARDS[wildcards.study, wildcards.shard].base)


def dataset_name(wildcards):
    """Param function: the dataset whose prepared files the wildcard's folder holds."""
    return DATASET_OF_FOLDER[wildcards.dataset]


def own_dataset_inputs(wildcards):
    """Input function: the file of the user's own dataset (its loader's module, or its .npz)."""
    return own_files({"model": "", "dataset": dataset_name(wildcards)})


def curve_inputs(wildcards):
    """Input function of a curve job: the weights files holding its two runs and the prepared dataset."""
    job = CURVES[wildcards.study, wildcards.pair]
    start, end = (f"results/{job.study}/weights/{key}.pt" for key in job.shards)
    folder = f"{PREPARED}/{path_text(job.cell['dataset'])}"
    return {
        "start": start,
        "end": end,
        "prepared": ancient(str(prepared_files(folder, [CLEAN])[0])),
    }


def study_options(keys):
    """Param function: these keys of the wildcard's study config, as JSON (what an analysis takes)."""
    return lambda wildcards: json.dumps(
        {k: config["studies"][wildcards.study].get(k) for k in keys}
    )


def study_axis_list(wildcards):
    return study_axes(config["studies"][wildcards.study])


# Resources that grow with each retry: a shard killed at its time or memory limit would otherwise be
# retried into the same wall.
SCALED_BY_ATTEMPT = ("runtime", "mem_mb")


def study_resource(name):
    """Input function: a resource of the wildcard's study, from its `resources` block or the default;
    runtime and memory times the attempt number."""

    def value(wildcards, attempt=1):
        declared = config["studies"][wildcards.study].get("resources", {})
        base = declared.get(name, RESOURCE_DEFAULTS[name])
        return base * attempt if name in SCALED_BY_ATTEMPT else base

    return value


def execution_flags(execution):
    """`chaosgrid train-shard` options for the config's `execution` block (how jobs run, not what they
    compute), as separate words for the rule to quote."""
    channels_last = (
        "--channels-last" if execution["channels_last"] else "--contiguous"
    )
    compile_ = "--compile" if execution["compile"] else "--no-compile"
    return ["--engine", execution["engine"], channels_last, compile_]


# The `chaosgrid train-shard` option of each file a training rule reads or writes.
SHARD_FILE_OPTIONS = {
    "start": "--init-weights",
    "runs": "--runs",
    "predictions": "--predictions",
    "history": "--history",
    "weights": "--weights",
}


def shard_file_options(wildcards, input, output):
    """Param function: each of a training job's own files as an option and its path, as separate words
    for the shell command to quote (paths hold axis values and file names, which are user input).
    """
    named = [*input.items(), *output.items()]
    return [
        word
        for name, path in named
        if name in SHARD_FILE_OPTIONS
        for word in (SHARD_FILE_OPTIONS[name], path)
    ]


def all_targets():
    """Every shard file and every figure. Shard files are targets too: Snakemake treats a missing
    intermediate file whose consumers are up to date as done, so a deleted shard would not rerun.
    """
    shards = [
        f"results/{s}/{kind}/{key}.parquet"
        for s, key in SHARDS
        if s not in ADAPTIVE
        for kind in SHARD_FILES
    ]
    weights = [
        f"results/{s}/weights/{key}.pt" for s, key in SHARDS if s in WEIGHT_STUDIES
    ]
    figures = [
        f"results/{study}/figures/{name}.png"
        for study, declared in config["studies"].items()
        for name in study_figures(declared)
    ]
    tables = [
        f"results/{study}/report/{page}.html"
        for study in config["studies"]
        for page in REPORT_PAGES
    ]
    curves = [f"results/{s}/curves/{key}.parquet" for s, key in CURVES]
    return shards + weights + curves + figures + tables
