"""Combine a study's shard files into its tables, reading only the columns each table needs.

- `runs`: every shard's runs, one row per run.
- `evals`: one row per run x evaluation set with its accuracy (tidy; read from the predictions files
  without touching their per-example arrays).
- `summary`: one row per grid point (the study's axis values) x evaluation set: runs, mean, std, min,
  max accuracy and the fraction diverged. A grid point's runs differ only in their seeds, so `std` is
  the run-to-run standard deviation.
- `history`: one row per run x epoch (training loss, accuracy, lr) with the run's axis values.
Probe sets (decision planes) are not test sets: `evals` and `summary` leave them out.
"""

from __future__ import annotations

import functools
import operator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from chaosgrid.cells import SEED_KEYS
from chaosgrid.estimators import accuracy_intervals
from chaosgrid.evalsets import PROBE_SETS
from chaosgrid.store import write_table

EVAL_COLUMNS = ["cell_id", "shift", "severity", "acc"]


def read_columns(
    files: list[str | Path],
    columns: list[str] | None = None,
    probes: bool | None = None,
    final: bool = True,
    cells: list[str] | None = None,
) -> pa.Table:
    """One table from many parquet files, streamed through a pyarrow dataset with column projection.

    For prediction files: probes=False keeps only test sets' rows, True only probe sets' rows, None all;
    final=True keeps only each run's final checkpoint (False: every checkpoint); `cells`, only those runs'
    rows (a shard of several grid points holds others').
    """
    try:
        dataset = ds.dataset([str(f) for f in files], format="parquet")
    except (OSError, pa.ArrowInvalid) as err:
        raise ValueError(unreadable_file(files, err)) from err
    filters = []
    if probes is not None:
        is_probe = ds.field("shift").isin(list(PROBE_SETS))
        filters.append(is_probe if probes else ~is_probe)
    if final and "final" in dataset.schema.names:
        filters.append(ds.field("final"))
    if cells is not None:
        filters.append(ds.field("cell_id").isin(cells))
    row_filter = functools.reduce(operator.and_, filters) if filters else None
    try:
        return dataset.to_table(columns=columns, filter=row_filter)
    except (OSError, pa.ArrowInvalid) as err:
        raise ValueError(unreadable_file(files, err)) from err


def unreadable_file(files: list[str | Path], err: Exception) -> str:
    """What to say when pyarrow cannot read a study's shard files: which one is truncated or corrupt (its own
    message may not name it; a killed copy or a full disk makes one) and what to do."""
    for path in files:
        try:
            pq.read_table(path)
        except (OSError, pa.ArrowInvalid) as found:
            return f"{path} is truncated or corrupt ({found}): delete it to have its shard re-run"
    return str(err)


def rows_at(frame: pd.DataFrame, values: dict) -> pd.DataFrame:
    """The rows of `frame` at one grid point: those with these axis values."""
    return frame[np.logical_and.reduce([frame[a] == v for a, v in values.items()])] if values else frame


def evals_frame(runs: pd.DataFrame, evals: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """Rows of a per-run table (run x evaluation set, run x epoch) with the run's axis values and divergence."""
    return evals.merge(runs[["cell_id", *axes, "diverged"]], on="cell_id", validate="many_to_one")


def summarize(frame: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """Per grid point and evaluation set: n runs, mean/std/min/max accuracy over converged runs with 95%
    intervals of the mean and std (`estimators.accuracy_intervals`; 2+ runs), diverged fraction."""

    keys = [*axes, "shift", "severity"]
    grouped = frame.groupby(keys, sort=True, dropna=False)
    acc = grouped["acc"]

    def bounds(values: pd.Series) -> pd.Series:
        values = values.dropna().to_numpy(dtype=float)
        if len(values) < 2:
            return pd.Series(np.nan, index=["mean_acc_lo", "mean_acc_hi", "std_acc_lo", "std_acc_hi"])
        found = accuracy_intervals(values)
        return pd.Series(
            {
                f"{name}_{end}": float(found[name][i])
                for name in ("mean_acc", "std_acc")
                for i, end in ((1, "lo"), (2, "hi"))
            }
        )

    table = pd.DataFrame(
        {
            "n_runs": grouped.size(),
            "n_converged": acc.count(),
            "mean_acc": acc.mean(),
            "std_acc": acc.std(ddof=1),
            "min_acc": acc.min(),
            "max_acc": acc.max(),
            "frac_diverged": grouped["diverged"].mean(),
        }
    )
    return table.join(acc.apply(bounds).unstack()).reset_index()


def aggregate(
    run_files: list, prediction_files: list, history_files: list, axes: list[str], outputs: dict[str, Path]
) -> None:
    """Write a study's `runs`, `evals`, `summary` and `history` tables to `outputs` (by name)."""
    runs = read_columns(run_files)
    evals = read_columns(prediction_files, EVAL_COLUMNS, probes=False)
    runs_df = runs.to_pandas()
    duplicated = runs_df["cell_id"].duplicated()
    if duplicated.any():
        raise ValueError(f"cell {runs_df['cell_id'][duplicated].iloc[0]} appears in more than one shard file")
    frame = evals_frame(runs_df, evals.to_pandas(), axes)
    history = evals_frame(runs_df, read_columns(history_files).to_pandas(), axes)
    write_table(runs, outputs["runs"])
    for name, table in (("evals", frame), ("summary", summarize(frame, axes)), ("history", history)):
        write_table(pa.Table.from_pandas(table, preserve_index=False), outputs[name])


def grid_point_matrices(
    runs: pd.DataFrame,
    prediction_files: list,
    axes: list[str],
    columns: list[str],
    probes: bool = False,
    at_step: dict[str, int] | None = None,
):
    """Yield (axis values, shift, severity, runs rows, {column: runs x examples matrix}) per grid point
    and evaluation set: test sets, or with probes=True the probe sets; at each run's final checkpoint, or at
    the step `at_step` gives for its cell id (a checkpoint the run kept).

    Reads one grid point's shard files at a time, so memory holds one point's predictions, not a study's.
    Rows are ordered by the runs' seeds, so twins (same seeds, one parameter changed) line up.
    """
    # a shard file is results/<study>/predictions/<shard key>.parquet
    by_key = {
        Path(f).as_posix().split("/predictions/", 1)[-1].removesuffix(".parquet"): f for f in prediction_files
    }
    for values, point in runs.groupby(axes, sort=True) if axes else [((), runs)]:
        values = dict(zip(axes, values if isinstance(values, tuple) else (values,)))
        missing = set(point["shard"]) - set(by_key)
        if missing:
            raise FileNotFoundError(f"no predictions file for shard {min(missing)!r}")
        files = [by_key[key] for key in sorted(set(point["shard"]))]
        table = read_columns(
            files,
            ["cell_id", "step", "shift", "severity", *columns],
            probes,
            final=at_step is None,
            cells=point["cell_id"].tolist(),
        ).to_pandas()
        if at_step is not None:
            table = table[table["step"] == table["cell_id"].map(at_step)]
        point = point.sort_values(list(SEED_KEYS))
        for (shift, severity), rows in table.groupby(["shift", "severity"], sort=False):
            rows = rows.set_index("cell_id").loc[point["cell_id"]]
            yield values, shift, int(severity), point, {c: np.stack(rows[c].to_numpy()) for c in columns}
