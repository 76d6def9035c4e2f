"""Snakemake `script:` for rule variance: the calibrated-chaos tables of one study (no logic here)."""

import sys

import pyarrow as pa
import pyarrow.parquet as pq

from chaosgrid.analysis.variance import study_tables
from chaosgrid.store import write_table

with open(snakemake.log[0], "w") as log:  # noqa: F821 (injected by Snakemake)
    sys.stderr = sys.stdout = log
    runs = pq.read_table(snakemake.input.runs).to_pandas()  # noqa: F821
    tables = study_tables(runs, snakemake.input.predictions, snakemake.params.axes)  # noqa: F821
    for name, frame in zip(("variance", "churn", "better_seeds", "independence"), tables):
        write_table(pa.Table.from_pandas(frame, preserve_index=False), snakemake.output[name])  # noqa: F821
        print(f"{name}: {len(frame)} rows")
