"""Full-batch GD vs SGD (Geiping et al., ICLR 2022): the paper's table, one row per named recipe (variant).

Per variant (and the values of any other axes), over its converged runs on the clean test set:
- what it is: `batching` (SGD and its batch order, or full batch and its chunks), `data` (live augmentation,
  none, or R fixed augmented copies), `steps`, and `modifications`: the settings in which it differs from the
  first variant (the reference row), leaving out those the other columns show;
- how it does: mean and std of test accuracy, the binomial std (the per-example coin-flip part of that std) and
  the distribution-wise std (what remains: the spread of the runs' accuracies on the distribution), both
  from the run-to-run variance estimators; the fraction of steps clipped; seconds of training per run.
A second table follows test accuracy through training (every checkpoint of the runs).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from chaosgrid.aggregate import grid_point_matrices, read_columns, rows_at
from chaosgrid.cells import BATCHING, CELL_DEFAULTS, SEED_KEYS, format_value
from chaosgrid.estimators import binomial_variance, distribution_variance
from chaosgrid.evalsets import clean_rows, is_clean

# Shown in their own columns, so not repeated among a row's modifications.
DATA = ("augmentation", "augment_copies")
SHOWN = {"variant", "epochs", *BATCHING, *DATA, *SEED_KEYS}
ORDERS = {
    "shuffle": "shuffled each epoch",
    "replacement": "sampled with replacement",
    "fixed": "one fixed order",
}


def batching(run: pd.Series) -> str:
    """How a run forms its steps, in words: SGD's batch and order, or full batch's chunks."""
    if run["steps"] > run["epochs"]:  # more than one step per epoch: minibatches
        return f"SGD, batch {run['batch_size']}, {ORDERS[run['batch_order']]}"
    chunks = f"chunks of {run['micro_batch']}" if run["micro_batch"] else "one pass"
    order = "new chunks every step" if run["batch_order"] != "fixed" else "fixed chunks"
    return f"full batch, {chunks}, {order}"


def data_variant(run: pd.Series) -> str:
    if run["augmentation"] == "none":
        return "no augmentation"
    if run["augment_copies"]:
        return f"{run['augment_copies']} fixed {run['augmentation']} copies"
    return f"live {run['augmentation']}"


def modifications(run: pd.Series, reference: pd.Series) -> str:
    """The settings in which `run` differs from the reference row (not those shown in other columns)."""
    changed = [
        f"{k}={format_value(run[k])}" for k in CELL_DEFAULTS if k not in SHOWN and run[k] != reference[k]
    ]
    return ", ".join(changed) or "-"


def _row(
    values: dict, point: pd.DataFrame, all_runs: pd.DataFrame, correct: np.ndarray, reference: pd.Series
) -> dict:
    """One row of the table: a grid point's description and its accuracy statistics (spreads need 2 runs)."""
    first, acc = point.iloc[0], correct.mean(1)
    spreads = dict.fromkeys(("std_acc", "std_binomial", "std_distribution"), np.nan)
    if len(acc) >= 2:
        spreads = {
            "std_acc": float(acc.std(ddof=1)),
            "std_binomial": float(np.sqrt(binomial_variance(correct))),
            "std_distribution": float(np.sqrt(max(distribution_variance(correct), 0.0))),
        }
    return {
        **values,
        "batching": batching(first),
        "data": data_variant(first),
        "steps": int(point["steps"].median()),
        "modifications": modifications(first, reference),
        "n_runs": len(all_runs),
        "n_diverged": int(all_runs["diverged"].sum()),
        "mean_acc": float(acc.mean()),
        **spreads,
        "clipped": float(point["clipped"].mean()),
        "seconds_per_run": float(point["wall_s"].mean()),
    }


def study_full_batch(
    runs: pd.DataFrame, prediction_files: list, axes: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(full_batch, full_batch_curves): the table, in the variants' declared order, and clean test accuracy at
    every checkpoint step (mean and std over converged runs). Diverged runs count in `n_diverged` only."""
    # the runs table keeps the declared order
    declared = {v: i for i, v in enumerate(pd.unique(runs["variant"]))}
    by_variant = lambda column: column.map(declared) if column.name == "variant" else column
    converged = runs[~runs["diverged"]]
    rows = []
    for values, shift, severity, point, m in grid_point_matrices(
        converged, prediction_files, axes, ["correct"]
    ):
        if is_clean(shift, severity):
            rows.append(_row(values, point, rows_at(runs, values), m["correct"], runs.iloc[0]))
    table = pd.DataFrame(rows).sort_values(axes, key=by_variant, kind="stable").reset_index(drop=True)
    checkpoints = read_columns(
        prediction_files, ["cell_id", "step", "shift", "severity", "acc"], probes=False, final=False
    ).to_pandas()
    grouped = (
        clean_rows(checkpoints)
        .merge(converged[["cell_id", *axes]], on="cell_id")
        .groupby([*axes, "step"])["acc"]
    )
    curves = pd.DataFrame(
        {"mean_acc": grouped.mean(), "std_acc": grouped.std(ddof=1), "n_runs": grouped.size()}
    )
    curves = curves.reset_index().sort_values([*axes, "step"], key=by_variant, kind="stable")
    return table, curves.reset_index(drop=True)
