"""Decision-region statistics of a study (Somepalli et al. 2022), from its runs' predictions on the planes.

Per grid point (the study's axis values), over its converged runs, at the checkpoint the `planes` block names
(`epoch`; 0: the final one):
- `fragmentation`: connected class regions per plane (4- or 8-connected, the block's `connectivity`),
  averaged over planes and runs, with the std over runs of each run's plane average;
- `reproducibility`: the fraction of plane points on which two runs agree, averaged over all pairs of runs,
  and `reproducibility_pair` for one fixed pair (the first two seeds), as the paper reports it;
- `test_error`: 1 - mean clean test accuracy, for the double-descent curve beside them.
Tables: `regions` (those, per grid point); `region_maps` (the predicted classes on the first plane of the
first runs of every grid point: the decision-region figure); `region_agreement` (per pair of grid points
that differ only in the compared column, the model where the study varies it, within each value of the
`by` columns, e.g. the optimizer: the mean agreement over pairs of one run of each; the diagonal is the
reproducibility); `triplets` (which images anchor each plane). The compared and `by` columns come from the
runs, so they may be set by named variants (an architecture x optimizer grid with per-optimizer lrs).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from chaosgrid.aggregate import grid_point_matrices
from chaosgrid.cells import SEED_KEYS
from chaosgrid.plan.blocks import plane_spec
from chaosgrid.planes import agreement, fragmentation, reproducibility

MAPS_PER_POINT = 3  # runs per grid point whose first-plane decision map is kept for the figure


def comparison(axes: list[str], spec: dict) -> tuple[str | None, list[str]]:
    """(the run column the agreement matrices compare, the columns that split them): the `planes` block's
    `compare` and `by`, else the model axis where the study varies it (else its first axis) and the others."""
    compare = spec["compare"] or ("model" if "model" in axes else (axes[0] if axes else None))
    by = spec["by"] or [a for a in axes if a != compare]
    return compare, by


def study_regions(
    runs: pd.DataFrame, prediction_files: list, axes: list[str], triplets: list, planes: dict | None = None
) -> tuple[pd.DataFrame, ...]:
    """(regions, maps, agreement, triplets) of a study whose shard files hold the planes probe set; the first
    three are empty if none do. `triplets`: the prepared anchors file; `planes`: the study's block."""
    import torch

    spec = plane_spec(planes)
    compare, by = comparison(axes, spec)
    runs = runs[~runs["diverged"]]
    at_step = None
    if spec["epoch"]:
        at_step = dict(
            zip(runs["cell_id"], (runs["steps"] / runs["epochs"] * spec["epoch"]).round().astype(int))
        )
    regions, maps, points = [], [], []
    for values, _, _, point, m in grid_point_matrices(
        runs, prediction_files, axes, ["pred"], probes=True, at_step=at_step
    ):
        pred = m["pred"]
        described = {**values, **{c: point[c].iloc[0] for c in [compare, *by] if c}}
        per_run = np.stack([fragmentation(p, spec["resolution"], spec["connectivity"]) for p in pred]).mean(1)
        regions.append(
            {
                **described,
                "n_runs": len(point),
                "connectivity": spec["connectivity"],
                "fragmentation": float(per_run.mean()),
                "fragmentation_std": float(per_run.std(ddof=1)) if len(per_run) > 1 else float("nan"),
                "reproducibility": reproducibility(pred),
                "reproducibility_pair": agreement(pred[:1], pred[1:2]) if len(pred) > 1 else float("nan"),
                "test_error": float(1 - point["test_acc"].mean()),
            }
        )
        for seeds, row in list(zip(point[list(SEED_KEYS)].itertuples(index=False), pred))[:MAPS_PER_POINT]:
            maps.append({**described, **seeds._asdict(), "pred": row[: spec["resolution"] ** 2]})
        points.append(({c: described[c] for c in [compare, *by] if c}, pred))
    anchors = torch.load(triplets[0], weights_only=True)["triplets"].numpy()
    table = pd.DataFrame(
        {
            "plane": np.arange(len(anchors)),
            "images": spec["images"],
            **{f"anchor_{i}": anchors[:, i] for i in range(3)},
        }
    )
    return pd.DataFrame(regions), pd.DataFrame(maps), agreement_matrix(points, compare, by), table


def agreement_matrix(
    points: list[tuple[dict, np.ndarray]], compare: str | None, by: list[str]
) -> pd.DataFrame:
    """Per ordered pair of grid points with the same `by` values: the mean agreement over pairs of runs, one
    from each (the same point: distinct runs only, i.e. its reproducibility). Raises ValueError when
    `compare` and `by` do not tell the grid points apart."""
    if compare is None:
        return pd.DataFrame()
    keys = [tuple(d.values()) for d, _ in points]
    if len(set(keys)) < len(keys):
        raise ValueError(
            f"planes: compare {compare!r} and by {by} do not tell the study's grid points apart; "
            f"name the columns that do"
        )
    rows = []
    for (a, pa), (b, pb) in itertools.product(points, repeat=2):
        if any(a[k] != b[k] for k in by):
            continue
        value = reproducibility(pa) if a == b else agreement(pa, pb)
        rows.append(
            {
                **{k: a[k] for k in by},
                f"{compare}_a": a[compare],
                f"{compare}_b": b[compare],
                "agreement": value,
            }
        )
    return pd.DataFrame(rows)
