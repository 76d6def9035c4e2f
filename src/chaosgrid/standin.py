"""CIFAR-10, CIFAR-10.1 and CIFAR-10-C written in their published on-disk formats, so the real loaders run
where the real files are absent: what a paper config's rehearsal trains on (synthetic CIFAR-shaped images,
10 classes, `chaosgrid.data.synthetic_images`), and the format writers the loaders' tests use.

A stand-in has the real shapes, dtypes, class count and file layout, not the real sizes: a rehearsal checks
that a config runs, not what it measures.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from chaosgrid.data import synthetic_images
from chaosgrid.downloads import CIFAR10_1_FILES, CIFAR10_C_LABELS, SOURCES

SEVERITIES = 5  # CIFAR-10-C stacks its five severities in one file per corruption
MADE = {"cifar10", "cifar10_1", "cifar10_c"}  # the published sources a stand-in exists for


def save_cifar10(root: Path, train: tuple[np.ndarray, list[int]], test: tuple[np.ndarray, list[int]]) -> None:
    """`root/cifar-10-batches-py` as Krizhevsky ships it (torchvision reads it): images N x 32 x 32 x 3 uint8,
    the training set split over five pickled batches, the test set in one, and the class names."""
    folder = root / SOURCES["cifar10"].folder
    folder.mkdir(parents=True, exist_ok=True)
    images, labels = train
    parts = np.array_split(np.arange(len(images)), 5)
    batches = {f"data_batch_{i + 1}": (images[p], [labels[j] for j in p]) for i, p in enumerate(parts)}
    for name, (x, y) in {**batches, "test_batch": test}.items():
        with open(folder / name, "wb") as f:
            pickle.dump({"data": x.transpose(0, 3, 1, 2).reshape(len(x), -1), "labels": list(y)}, f)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({"label_names": [f"class {i}" for i in range(10)]}, f)


def save_cifar10_1(folder: Path, images: np.ndarray, labels: np.ndarray) -> None:
    """The two .npy files of CIFAR-10.1 v6 (N x 32 x 32 x 3 uint8, integer labels) in `folder` (under a data
    root: `cifar10.1`)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, array in zip(CIFAR10_1_FILES, (images, labels), strict=True):
        np.save(folder / name, array)


def save_cifar10_c(root: Path, corruptions: dict[str, np.ndarray], labels: np.ndarray) -> None:
    """`root/CIFAR-10-C`: one .npy per corruption (its severities 1..5 stacked, N/5 rows each) and labels."""
    folder = root / SOURCES["cifar10_c"].folder
    folder.mkdir(parents=True, exist_ok=True)
    for corruption, images in corruptions.items():
        np.save(folder / f"{corruption}.npy", images)
    np.save(folder / CIFAR10_C_LABELS, labels)


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x, y = synthetic_images(n, seed)
    return (x * 255).round().byte().permute(0, 2, 3, 1).numpy(), y.numpy()


def write(root: Path, sources: dict[str, list[str]], train: int, test: int) -> list[str]:
    """Stand-ins for the published `sources` among MADE (as `downloads.sources_for` names them, with the
    files each needs) under `root`: `train` training and `test` test images for CIFAR-10, `test` images for
    CIFAR-10.1 and per severity of each CIFAR-10-C corruption. One line per source written."""
    said = []
    if "cifar10" in sources:
        x, y = _images(train, 0)
        x_test, y_test = _images(test, 1)
        save_cifar10(root, (x, y.tolist()), (x_test, y_test.tolist()))
        said.append(f"cifar10: {train} training and {test} test images")
    if "cifar10_1" in sources:
        save_cifar10_1(root / SOURCES["cifar10_1"].folder, *_images(test, 2))
        said.append(f"cifar10_1: {test} images")
    corruptions = [f.removesuffix(".npy") for f in sources.get("cifar10_c", []) if f != CIFAR10_C_LABELS]
    if corruptions:
        x, y = _images(SEVERITIES * test, 3)  # the corruption is not applied: only the file is exercised
        save_cifar10_c(root, dict.fromkeys(corruptions, x), y)
        said.append(f"cifar10_c: {', '.join(corruptions)}, {test} images per severity (uncorrupted)")
    return said
