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
that differ only on the compared axis, `model` where the study has it, else its first: the mean agreement
over pairs of one run of each; the diagonal is the reproducibility); `triplets` (which images anchor each
plane).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from chaosgrid.aggregate import grid_point_matrices
from chaosgrid.grid import SEED_KEYS, plane_spec
from chaosgrid.planes import agreement, fragmentation, reproducibility

MAPS_PER_POINT = 3  # runs per grid point whose first-plane decision map is kept for the figure


def compared_axis(axes: list[str]) -> str | None:
    """The axis the agreement matrix runs over: the architecture where the study varies it, else the first."""
    return "model" if "model" in axes else (axes[0] if axes else None)


def study_regions(runs: pd.DataFrame, prediction_files: list, axes: list[str], triplets: list,
                  planes: dict | None = None) -> tuple[pd.DataFrame, ...]:  # fmt: skip
    """(regions, maps, agreement, triplets) of a study whose shard files hold the planes probe set; the first
    three are empty if none do. `triplets`: the prepared anchors file; `planes`: the study's block."""
    import torch

    spec = plane_spec(planes)
    runs = runs[~runs["diverged"]]
    at_step = None
    if spec["epoch"]:
        at_step = dict(zip(runs["cell_id"], (runs["steps"] / runs["epochs"] * spec["epoch"]).round().astype(int)))
    regions, maps, preds = [], [], {}
    for values, _, _, point, m in grid_point_matrices(runs, prediction_files, axes, ["pred"], probes=True,
                                                      at_step=at_step):  # fmt: skip
        pred = m["pred"]
        per_run = np.stack([fragmentation(p, spec["resolution"], spec["connectivity"]) for p in pred]).mean(1)
        regions.append({**values, "n_runs": len(point), "connectivity": spec["connectivity"],
                        "fragmentation": float(per_run.mean()),
                        "fragmentation_std": float(per_run.std(ddof=1)) if len(per_run) > 1 else float("nan"),
                        "reproducibility": reproducibility(pred),
                        "reproducibility_pair": agreement(pred[:1], pred[1:2]) if len(pred) > 1 else float("nan"),
                        "test_error": float(1 - point["test_acc"].mean())})  # fmt: skip
        for seeds, row in list(zip(point[list(SEED_KEYS)].itertuples(index=False), pred))[:MAPS_PER_POINT]:
            maps.append({**values, **seeds._asdict(), "pred": row[: spec["resolution"] ** 2]})
        preds[tuple(values.items())] = pred
    anchors = torch.load(triplets[0], weights_only=True)["triplets"].numpy()
    table = pd.DataFrame({"plane": np.arange(len(anchors)), "images": spec["images"],
                          **{f"anchor_{i}": anchors[:, i] for i in range(3)}})  # fmt: skip
    return pd.DataFrame(regions), pd.DataFrame(maps), agreement_matrix(preds, axes), table


def agreement_matrix(preds: dict[tuple, np.ndarray], axes: list[str]) -> pd.DataFrame:
    """Per ordered pair of grid points equal on every axis but the compared one: the mean agreement over
    pairs of runs, one from each (the same point: distinct runs only, i.e. its reproducibility)."""
    axis = compared_axis(axes)
    rows = []
    for (a, pa), (b, pb) in itertools.product(preds.items(), repeat=2):
        da, db = dict(a), dict(b)
        if axis is None or any(da[k] != db[k] for k in axes if k != axis):
            continue
        value = reproducibility(pa) if a == b else agreement(pa, pb)
        rows.append({**{k: v for k, v in da.items() if k != axis}, f"{axis}_a": da[axis], f"{axis}_b": db[axis],
                     "agreement": value})  # fmt: skip
    return pd.DataFrame(rows)
