"""Snakemake `script:` for rule aggregate: hands the shard file lists to chaosgrid (no logic here).

A script rather than a shell command because a study's file list can exceed the shell's argument limit.
"""

import sys

from chaosgrid.aggregate import aggregate

with open(snakemake.log[0], "w") as log:  # noqa: F821 (injected by Snakemake)
    sys.stderr = sys.stdout = log
    out = snakemake.output  # noqa: F821
    aggregate(snakemake.input.runs, snakemake.input.predictions, snakemake.params.axes,  # noqa: F821
              out.runs, out.evals, out.summary)  # fmt: skip
    print(f"aggregated {len(snakemake.input.runs)} shards")  # noqa: F821
