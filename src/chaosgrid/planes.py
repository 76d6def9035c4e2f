"""Decision regions on planes through triplets of images (Somepalli et al., CVPR 2022): the points and the scores.

A plane passes through three anchor images (a triplet) of the training or test set, of three distinct classes
or any. Every run classifies the same grid of points on each plane (the triangle's bounding box plus a margin
on each axis, in Euclidean coordinates of the plane built in normalised input space, as dbViz does), stored
like an evaluation set's predictions, as the probe set "planes". Its label for a point is the class of the
nearest anchor. The triplets depend on the dataset and the study's `planes` block alone (a fixed generator),
so every run compared shares them; a prepared file keeps them (which examples) for the analyses.
From the predictions:
- fragmentation: the number of connected same-class regions on a plane, 4- or 8-connected (dbViz: 8,
  diagonal contact joins regions; every isolated point counts);
- reproducibility: the fraction of plane points on which two runs agree (dbViz calls it "IoU"; it is not).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from chaosgrid.data import Dataset
from chaosgrid.sampling import generator


def choose_triplets(y: torch.Tensor, count: int, classes: str) -> torch.Tensor:
    """(count, 3) indices into y: three images of three distinct classes (three classes drawn, then one image
    of each), or three distinct images of any classes."""
    g = generator("planes", 0)
    y = y.cpu()
    rows = []
    for _ in range(count):
        if classes == "any":
            rows.append(torch.randperm(len(y), generator=g)[:3].tolist())
            continue
        chosen = torch.randperm(int(y.max()) + 1, generator=g)[:3]
        members = [torch.nonzero(y == c).squeeze(1) for c in chosen]
        rows.append([int(m[torch.randint(len(m), (1,), generator=g)]) for m in members])
    return torch.tensor(rows)


def anchors(data: Dataset, spec: dict) -> torch.Tensor:
    """The (triplets, 3) indices of the anchors a plane spec picks from the training or test set of `data`."""
    y = data.y_train if spec["images"] == "train" else data.y_test
    return choose_triplets(y, spec["triplets"], spec["classes"])


@dataclass(frozen=True)
class PlanePoints:
    """The images at every grid point of every plane, made chunk by chunk as they are evaluated: 500 CIFAR
    planes of 50 x 50 points are 15 GB as one tensor. Takes the place of an image tensor in an evaluation set
    (`len`, `shape`, `device`, `split`, `contiguous`)."""

    origin: torch.Tensor  # (planes, D) the first anchor, float64
    basis: torch.Tensor  # (planes, 2, D) orthonormal directions of each plane, float64
    coords: torch.Tensor  # (planes, R*R, 2) plane coordinates of the grid points, row-major (rows along v)
    image_shape: tuple[int, ...]
    memory_format: torch.memory_format = torch.contiguous_format

    def __len__(self) -> int:
        return self.coords.shape[0] * self.coords.shape[1]

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.image_shape)

    @property
    def device(self) -> torch.device:
        return self.origin.device

    def contiguous(self, memory_format: torch.memory_format = torch.contiguous_format) -> PlanePoints:
        return replace(self, memory_format=memory_format)

    def chunk(self, start: int, stop: int) -> torch.Tensor:
        """Images start..stop-1 (in plane-major order), float32."""
        index = torch.arange(start, stop, device=self.device)
        plane, point = index // self.coords.shape[1], index % self.coords.shape[1]
        uv = self.coords[plane, point]  # (n, 2)
        flat = self.origin[plane] + torch.einsum("nk,nkd->nd", uv, self.basis[plane])
        return flat.float().reshape(-1, *self.image_shape).contiguous(memory_format=self.memory_format)

    def split(self, size: int):
        return (self.chunk(start, min(start + size, len(self))) for start in range(0, len(self), size))

    def materialize(self) -> torch.Tensor:
        return self.chunk(0, len(self))


def plane_points(
    x: torch.Tensor, y: torch.Tensor, trip: torch.Tensor, resolution: int, margin: float
) -> tuple[PlanePoints, torch.Tensor]:
    """The grid points on the plane through each triplet of (normalised) images x[trip], and their labels (the
    nearest anchor's class). A resolution x resolution grid spans the anchors' bounding box in plane
    coordinates, widened by `margin` of its extent on each axis; points are not clamped."""
    trip = trip.to(x.device)
    a, b, c = (x[trip[:, i]].flatten(1).double() for i in range(3))
    length = (b - a).norm(dim=1, keepdim=True)
    e1 = (b - a) / length
    along = ((c - a) * e1).sum(1, keepdim=True)
    e2 = (c - a) - along * e1
    height = e2.norm(dim=1, keepdim=True)
    e2 = e2 / height
    # plane coordinates (u, v) of the anchors: a at (0, 0), b on the u axis, c above it
    zero = torch.zeros_like(length)
    corners = torch.stack(
        [torch.cat([zero, zero], 1), torch.cat([length, zero], 1), torch.cat([along, height], 1)], 1
    )
    low, high = corners.amin(1), corners.amax(1)  # (planes, 2)
    pad = margin * (high - low)
    steps = torch.linspace(0, 1, resolution, dtype=torch.float64, device=x.device)
    # (planes, R, 2)
    axis = (low - pad)[:, None, :] + steps[None, :, None] * (high - low + 2 * pad)[:, None, :]
    u = axis[:, None, :, 0].expand(-1, resolution, -1)  # rows run along v, columns along u
    v = axis[:, :, None, 1].expand(-1, -1, resolution)
    coords = torch.stack([u, v], dim=-1).reshape(len(trip), -1, 2)  # (planes, R*R, 2)
    nearest = torch.cdist(coords, corners).argmin(-1)  # (planes, R*R): which anchor is closest
    labels = y.to(x.device)[trip.gather(1, nearest)]
    points = PlanePoints(a, torch.stack([e1, e2], 1), coords, tuple(x.shape[1:]))
    return points, labels.reshape(-1)


def probe_set(data: Dataset, spec: dict, trip: torch.Tensor) -> tuple[PlanePoints, torch.Tensor]:
    """The `planes` probe set of a plane spec through the triplets `trip`, on data's device."""
    x, y = (data.x_train, data.y_train) if spec["images"] == "train" else (data.x_test, data.y_test)
    return plane_points(data.normalize(x), y, trip, spec["resolution"], spec["margin"])


def fragmentation(pred: np.ndarray, resolution: int, connectivity: int = 8) -> np.ndarray:
    """Connected same-class regions on each plane, for one run's plane predictions (flat, row-major): regions
    joined across edges (4) or also across corners (8, dbViz's skimage connectivity=2)."""
    # Imported here: every shard job imports this module, and scipy.ndimage costs it 0.17 s.
    from scipy import ndimage

    structure = np.ones((3, 3), dtype=bool) if connectivity == 8 else None  # None: scipy's edge neighbours
    grids = pred.reshape(-1, resolution, resolution)
    return np.array([sum(ndimage.label(grid == c, structure)[1] for c in np.unique(grid)) for grid in grids])


def reproducibility(preds: np.ndarray) -> float:
    """Mean over pairs of runs (rows) of the fraction of points on which both predict the same class."""
    runs = len(preds)
    if runs < 2:
        return float("nan")
    counts = np.stack([(preds == c).sum(0) for c in np.unique(preds)])  # class counts per point
    agreeing_pairs = (counts * (counts - 1) / 2).sum(0)
    return float((agreeing_pairs / (runs * (runs - 1) / 2)).mean())


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """Mean over every pair (one run of `a`, one of `b`; rows) of the fraction of points where both agree."""
    return float(np.mean([(row == b).mean(1) for row in a]))
