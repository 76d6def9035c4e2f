"""Decision-region statistics of a study (Somepalli et al. 2022), from its runs' predictions on the planes.

Per grid point (the study's axis values), over its converged runs:
- `fragmentation`: connected class regions per plane, averaged over runs and planes (with the std over runs
  of each run's plane average);
- `reproducibility`: the fraction of plane points on which two runs agree, averaged over all pairs of runs;
- `test_error`: 1 - mean clean test accuracy, for the double-descent curve beside them.
A second table keeps the predicted classes on the first plane of the first runs of every grid point, the
data of the decision-region figure.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from chaosgrid.aggregate import grid_point_matrices
from chaosgrid.grid import SEED_KEYS
from chaosgrid.planes import RESOLUTION, fragmentation, reproducibility

MAPS_PER_POINT = 3  # runs per grid point whose first-plane decision map is kept for the figure


def study_regions(runs: pd.DataFrame, prediction_files: list, axes: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(regions, maps) of a study whose shard files hold the planes probe set; both empty if none do."""
    runs = runs[~runs["diverged"]]
    regions, maps = [], []
    for values, _, _, point, m in grid_point_matrices(runs, prediction_files, axes, ["pred"], probes=True):
        per_run = np.stack([fragmentation(p) for p in m["pred"]]).mean(1)  # each run's mean over planes
        regions.append({**values, "n_runs": len(point), "fragmentation": float(per_run.mean()),
                        "fragmentation_std": float(per_run.std(ddof=1)) if len(per_run) > 1 else float("nan"),
                        "reproducibility": reproducibility(m["pred"]),
                        "test_error": float(1 - point["test_acc"].mean())})  # fmt: skip
        for seeds, pred in list(zip(point[list(SEED_KEYS)].itertuples(index=False), m["pred"]))[:MAPS_PER_POINT]:
            maps.append({**values, **seeds._asdict(), "pred": pred[: RESOLUTION * RESOLUTION]})
    return pd.DataFrame(regions), pd.DataFrame(maps)
