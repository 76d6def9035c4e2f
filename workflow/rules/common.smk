# The plan (chaosgrid.plan.workflow: torch-free, tested without Snakemake) and the input functions the rules
# call. Settings are read as config[key]: the schema, validated in the Snakefile, holds every default.
import json
import os
import shlex
import sys

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger
from snakemake_interface_executor_plugins.settings import DeploymentMethod

from chaosgrid.evalsets import parse_eval_name
from chaosgrid.plan import workflow as planning
from chaosgrid.plan.analyses import ANALYSES, REPORT_PAGES, REPORT_TABLES, study_figures
from chaosgrid.plan.blocks import study_axes
from chaosgrid.plan.own import own_files
from chaosgrid.plan.paths import DATASET_FILE, PREPARED  # the prepare rules' outputs


def point_jobs_at_chaosgrid():
    """Jobs call the `chaosgrid` beside Snakemake's own Python (which planning imported), or in a conda env or
    container, that environment's (envs/chaosgrid.post-deploy.sh installs CHAOSGRID_CHECKOUT)."""
    os.environ.update(
        CHAOSGRID_CHECKOUT=workflow.basedir,
        CHAOSGRID_SAVE_EVERY=str(config["save_every"]),  # minutes; why not a param: train.smk
    )
    isolated = {DeploymentMethod.CONDA, DeploymentMethod.APPTAINER}
    if not isolated & set(workflow.deployment_settings.deployment_method):
        bin_dir = shlex.quote(os.path.dirname(sys.executable))
        shell.prefix(f'set -euo pipefail; export PATH={bin_dir}:"$PATH"; ')


def make_plan():
    """The config's plan, or a one-line WorkflowError; expanded, checked and announced once, by the main
    process (a job's own Snakemake, on a cluster, builds only its own shard and says nothing)."""
    try:
        files = workflow.overwrite_configfiles or ["config/config.yaml"]
        plan = planning.Plan.of(config, files, whole=workflow.is_main_process)
    except planning.PlanError as err:
        raise WorkflowError(str(err)) from err
    if workflow.is_main_process:
        if problem := plan.missing_data():
            raise WorkflowError(problem)
        if "--report" in sys.argv and (problem := planning.report_problem(config["studies"])):
            raise WorkflowError(problem)
        if workflow.local_exec:  # a cluster runs jobs elsewhere
            cores = workflow.resource_settings.cores
            if warning := planning.cores_warning(cores, os.cpu_count()):
                logger.warning(warning)
        for level, line in plan.announcements(config):
            getattr(logger, level)(line)
    return plan


point_jobs_at_chaosgrid()


envvars:
    "CHAOSGRID_CHECKOUT",
    "CHAOSGRID_SAVE_EVERY",


PLAN = make_plan()
SHARDS, ADAPTIVE = PLAN.shards, PLAN.adaptive
one_of = planning.one_of


wildcard_constraints:
    study=r"[A-Za-z0-9_]+",
    shard=r"([a-z_]+~[^/~]+/)*seeds~\d+(-\d+)?(,\d+(-\d+)?)*",
    pair=r"([a-z_]+~[^/~]+/)*pair~\d+-\d+",


def adaptive_keys(study, looks=None):
    """The shard keys of an adaptive study's first `looks` looks (all of them: until every comparison has
    stopped): the first block, then after each look the next block of the points its decision continues.
    Each look's decision is a checkpoint: Snakemake plans up to the first not yet made."""
    until, keys = ADAPTIVE[study], PLAN.first_block(study)
    for look in range(1, (until.looks if looks is None else looks) + 1):
        decision = checkpoints.decide.get(study=study, look=look).output[0]
        if not (going := json.loads(open(decision).read())["continue"]):
            break
        first = look * until.block
        keys += [f"{prefix}seeds~{first}-{first + until.block - 1}" for prefix in going]
    return keys


def shard_files(kind, looks=None):
    """The `kind` file of every shard of the wildcard's study its tables read (an adaptive study's trained so
    far), or with `looks`, of those trained before the wildcard's look."""

    def files(wildcards):
        if looks:
            keys = adaptive_keys(wildcards.study, int(wildcards.look) - 1)
        elif wildcards.study in ADAPTIVE:
            keys = adaptive_keys(wildcards.study)
        else:
            keys = list(SHARDS.study(wildcards.study))
        return [f"results/{wildcards.study}/{kind}/{key}.parquet" for key in keys]

    return files


def get_start_weights(wildcards):
    """The weights file a shard's runs start from (`init_from`), or nothing."""
    shard = SHARDS[wildcards.study, wildcards.shard]
    source = shard.base["init_from"]
    return {"start": f"results/{source}/weights/{shard.init_key}.pt"} if source else {}


def get_published(dataset="", shifts=()):
    """The published datasets' folders (downloaded when missing); `ancient`: their times re-run nothing."""
    return [ancient(folder) for folder in PLAN.published(dataset, shifts)]


def get_prepared(training, as_options=False):
    """The prepared dataset and evaluation sets a shard's training job reads (`Shard.training`: one that
    keeps its weights evaluates its shifts in a job of its own), or with `training=False`, all of them; with
    `as_options`, as the job's `--prepared NAME=PATH` words."""

    def files(wildcards):
        shard = SHARDS[wildcards.study, wildcards.shard]
        named = PLAN.prepared(shard.training() if training else shard)
        return planning.prepared_options(named) if as_options else list(named.values())

    return files


def get_own(wildcards):
    """The files of the user's own model or dataset a shard uses: editing one re-runs exactly its shards."""
    return own_files(SHARDS[wildcards.study, wildcards.shard].base)


def get_dataset(wildcards):
    """The dataset whose prepared files the wildcard's folder holds."""
    return PLAN.dataset_of_folder[wildcards.dataset]


def get_curve_inputs(wildcards):
    """A curve job's two runs' weights files and the prepared dataset (`ancient`, as the shards read it)."""
    files = PLAN.curve_files(PLAN.curves[wildcards.study, wildcards.pair])
    return {**files, "prepared": ancient(files["prepared"])}


def get_study_axes(wildcards):
    return study_axes(config["studies"][wildcards.study])


def get_resource(name):
    """A resource of the wildcard's study (planning.Plan.resource), scaled by the attempt where it grows."""
    return lambda wildcards, attempt=1: PLAN.resource(wildcards.study, name, attempt)
