# chaosgrid workflow: config -> grid of shards -> per-shard training -> tables -> figures.
# `snakemake --cores 2` runs config/config.yaml; `--configfile config/<study>.yaml` runs that file's studies
# alone (Snakemake would merge a named file into the default one, running the default grid too).
import os

from snakemake.exceptions import WorkflowError
from snakemake.utils import min_version, validate

from chaosgrid.configs import schema_problem

min_version("9.0")


if not workflow.overwrite_configfiles:

    configfile: "config/config.yaml"


# One line naming the key (and the closest known one) before Snakemake's validation, whose message prints
# the whole schema of the place.
if problem := schema_problem(
    config, os.path.join(workflow.basedir, "workflow", "schemas", "config.schema.yaml")
):
    raise WorkflowError(problem)
validate(config, "workflow/schemas/config.schema.yaml")


report: "workflow/report/workflow.rst"


# Used only with --software-deployment-method apptainer: an image built from envs/chaosgrid.def.
container: config["container"]


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/sequential.smk"
include: "workflow/rules/curves.smk"
include: "workflow/rules/aggregate.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/analysis.smk"


rule all:
    default_target: True
    input:
        lambda wildcards: PLAN.targets(),
