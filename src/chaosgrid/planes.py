"""Decision regions on planes through training images (Somepalli et al., CVPR 2022): the points and the scores.

A plane passes through three training images of three different classes. Every run classifies the same
dense grid of points on each plane (the triangle's bounding box plus a margin, in Euclidean coordinates of
the plane), and those predictions are stored like any evaluation set's, as the probe set "planes". Its
label for a point is the class of the nearest of the three images, so its "accuracy" says how often a run
keeps the anchors' classes around them. From the predictions:
- fragmentation: the number of connected same-class regions on a plane (4-connectivity), per run;
- reproducibility: the fraction of plane points on which two runs with different seeds agree.
The planes are fixed by the dataset alone (their seed does not vary), so all runs of a study share them.
"""

from __future__ import annotations

import numpy as np
import torch

from chaosgrid.data import generator

N_PLANES = 8
RESOLUTION = 32  # points per side: 8 planes x 32 x 32 = 8,192 points, about one CIFAR-10 test set
MARGIN = 0.25  # of the triangle's extent, on every side


def triplets(y: torch.Tensor, n_planes: int = N_PLANES) -> torch.Tensor:
    """(n_planes, 3) training-set indices, each row three images of three different classes."""
    g = generator("planes", 0)
    y = y.cpu()
    rows = []
    for _ in range(n_planes):
        classes = torch.randperm(int(y.max()) + 1, generator=g)[:3]
        members = [torch.nonzero(y == c).squeeze(1) for c in classes]
        rows.append([int(m[torch.randint(len(m), (1,), generator=g)]) for m in members])
    return torch.tensor(rows)


def plane_points(x: torch.Tensor, y: torch.Tensor, resolution: int = RESOLUTION, margin: float = MARGIN):
    """Images on a resolution x resolution grid over each plane, row-major per plane, and their labels.

    Returns (points of shape (n_planes * resolution**2, *image), labels: the nearest anchor's class).
    Points off the triangle may leave [0, 1]: clamping them would bend the plane.
    """
    trip = triplets(y).to(x.device)
    a, b, c = (x[trip[:, i]].flatten(1).double() for i in range(3))
    length = (b - a).norm(dim=1, keepdim=True)
    e1 = (b - a) / length
    along = ((c - a) * e1).sum(1, keepdim=True)
    e2 = (c - a) - along * e1
    height = e2.norm(dim=1, keepdim=True)
    e2 = e2 / height
    # plane coordinates (u, v) of the anchors: a at (0, 0), b on the u axis, c above it
    zero = torch.zeros_like(length)
    anchors = torch.stack([torch.cat([zero, zero], 1), torch.cat([length, zero], 1), torch.cat([along, height], 1)], 1)
    low, high = anchors.amin(1), anchors.amax(1)  # (n_planes, 2)
    pad = margin * (high - low)
    steps = torch.linspace(0, 1, resolution, dtype=torch.float64, device=x.device)
    axis = (low - pad)[:, None, :] + steps[None, :, None] * (high - low + 2 * pad)[:, None, :]  # (n_planes, R, 2)
    u = axis[:, None, :, 0].expand(-1, resolution, -1)  # rows run along v, columns along u
    v = axis[:, :, None, 1].expand(-1, -1, resolution)
    coords = torch.stack([u, v], dim=-1).reshape(len(trip), -1, 2)  # (n_planes, R*R, 2)
    points = a[:, None] + coords[..., :1] * e1[:, None] + coords[..., 1:] * e2[:, None]
    nearest = torch.cdist(coords, anchors).argmin(-1)  # (n_planes, R*R): which anchor is closest
    labels = y.to(x.device)[trip.gather(1, nearest)]
    return points.reshape(-1, *x.shape[1:]).to(x.dtype), labels.reshape(-1)


def fragmentation(pred: np.ndarray, resolution: int = RESOLUTION) -> np.ndarray:
    """Connected same-class regions on each plane, for one run's plane predictions (flat, row-major)."""
    # Imported here: every shard job imports this module (for plane_points), and scipy.ndimage costs it 0.17 s.
    from scipy import ndimage

    grids = pred.reshape(-1, resolution, resolution)
    return np.array([sum(ndimage.label(grid == c)[1] for c in np.unique(grid)) for grid in grids])


def reproducibility(preds: np.ndarray) -> float:
    """Mean over pairs of runs (rows) of the fraction of points on which both predict the same class."""
    runs = len(preds)
    if runs < 2:
        return float("nan")
    counts = np.stack([(preds == c).sum(0) for c in np.unique(preds)])  # class counts per point
    agreeing_pairs = (counts * (counts - 1) / 2).sum(0)
    return float((agreeing_pairs / (runs * (runs - 1) / 2)).mean())
