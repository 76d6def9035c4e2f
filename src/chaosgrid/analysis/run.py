"""The job of one declared analysis of one study (`scripts/analysis.py` calls it): read the runs table,
compute the analysis's tables, write each atomically."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from chaosgrid.plan.analyses import ANALYSES
from chaosgrid.store import write_table


def run(
    name: str,
    runs_path: str,
    prediction_files: list[str],
    axes: list[str],
    outputs: dict[str, str],
    extra: dict | None = None,
) -> None:
    """Compute analysis `name` for one study and write each of its tables atomically; `extra`: the further
    files the workflow gives the analyses that read more (by input name) and the study options they take,
    passed on as keyword arguments."""
    analysis = ANALYSES[name]
    runs = pq.read_table(runs_path).to_pandas()
    frames = analysis.function("compute")(runs, prediction_files, axes, **(extra or {}))
    for table, frame in zip(analysis.tables, frames, strict=True):
        write_table(pa.Table.from_pandas(frame, preserve_index=False), outputs[table])
        print(f"{table}: {len(frame)} rows")
