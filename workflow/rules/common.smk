# Grid expansion and input functions shared by the rules. Planning imports chaosgrid.grid only (no torch).
from snakemake.exceptions import WorkflowError

from chaosgrid.grid import GridError, expand_study, study_axes

RESOURCE_DEFAULTS = {"threads": 1, "mem_mb": 2000, "runtime": 30, "gpus": 0}
FIGURES = ["accuracy_distribution", "mean_std_by_axis", "shifts"]
VARIANCE_TABLES = ["variance", "churn", "better_seeds", "independence"]
VARIANCE_FIGURES = ["variance_by_axis", "independence", "churn", "variance_vs_shift"]
REGION_TABLES = ["regions", "region_maps"]
REGION_FIGURES = ["decision_regions", "double_descent"]


def _expand_all(studies):
    shards = {}
    for name, study in studies.items():
        try:
            for shard in expand_study(name, study):
                shards[name, shard.key] = shard
        except GridError as err:
            raise WorkflowError(f"config studies.{name}: {err}") from err
    return shards


SHARDS = _expand_all(config["studies"])


wildcard_constraints:
    study=r"[A-Za-z0-9_]+",
    shard=r"([a-z_]+~[^/~]+/)*seeds~\d+-\d+",


def shard_files(kind):
    """Input function: the `kind` (runs or predictions) file of every shard of the wildcard's study."""

    def files(wildcards):
        return [
            f"results/{s}/{kind}/{key}.parquet"
            for s, key in SHARDS
            if s == wildcards.study
        ]

    return files


def study_resource(name):
    """Input function: a resource of the wildcard's study, from its `resources` block or the default."""

    def value(wildcards, attempt=1):
        declared = config["studies"][wildcards.study].get("resources", {})
        return declared.get(name, RESOURCE_DEFAULTS[name])

    return value


def execution_flags(execution):
    """`chaosgrid train-shard` options for the config's `execution` block (how jobs run, not what they compute)."""
    channels_last = (
        "--channels-last" if execution.get("channels_last", False) else "--contiguous"
    )
    compile_ = "--compile" if execution.get("compile", False) else "--no-compile"
    return f"--engine {execution.get('engine', 'auto')} {channels_last} {compile_}"


def all_targets():
    """Every shard file and every figure. Shard files are targets too: Snakemake treats a missing
    intermediate file whose consumers are up to date as done, so a deleted shard would not rerun.
    """
    shards = [
        f"results/{s}/{kind}/{key}.parquet"
        for s, key in SHARDS
        for kind in ("runs", "predictions")
    ]
    figures = [
        f"results/{study}/figures/{name}.png"
        for study, declared in config["studies"].items()
        for name in FIGURES
        + VARIANCE_FIGURES
        + (REGION_FIGURES if "planes" in declared.get("shifts", []) else [])
    ]
    return shards + figures
