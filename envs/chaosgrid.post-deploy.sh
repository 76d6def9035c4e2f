#!/usr/bin/env bash
# Run by Snakemake inside the new conda environment, once, after creating it from chaosgrid.yaml: installs
# this checkout's chaosgrid (editable, so the jobs run the code the Snakefile was planned with; its
# dependencies are already pinned in chaosgrid.yaml). The workflow exports CHAOSGRID_CHECKOUT.
set -euo pipefail
pip install --no-deps --editable "${CHAOSGRID_CHECKOUT:?set by the workflow (workflow/rules/common.smk)}"
