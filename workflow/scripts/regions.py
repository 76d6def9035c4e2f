"""Snakemake `script:` for rule regions: the decision-region tables of one study (no logic here)."""

import sys

import pyarrow as pa
import pyarrow.parquet as pq

from chaosgrid.analysis.regions import study_regions
from chaosgrid.store import write_table

with open(snakemake.log[0], "w") as log:  # noqa: F821 (injected by Snakemake)
    sys.stderr = sys.stdout = log
    runs = pq.read_table(snakemake.input.runs).to_pandas()  # noqa: F821
    tables = study_regions(runs, snakemake.input.predictions, snakemake.params.axes)  # noqa: F821
    for name, frame in zip(("regions", "region_maps"), tables):
        write_table(pa.Table.from_pandas(frame, preserve_index=False), snakemake.output[name])  # noqa: F821
        print(f"{name}: {len(frame)} rows")
