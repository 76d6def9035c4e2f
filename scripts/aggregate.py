"""Snakemake `script:` for rule aggregate: hands the shard file lists to chaosgrid (no logic here).

A script rather than a shell command because a study's file list can exceed the shell's argument limit.
"""

import sys

from chaosgrid.aggregate import aggregate

with open(snakemake.log[0], "w") as log:  # noqa: F821 (injected by Snakemake)
    sys.stderr = sys.stdout = log
    s = snakemake  # noqa: F821
    aggregate(s.input.runs, s.input.predictions, s.input.history, s.params.axes, dict(s.output.items()))
    print(f"aggregated {len(s.input.runs)} shards")
