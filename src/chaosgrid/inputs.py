"""Prepared inputs: a dataset and each of its evaluation sets, made once as files that every shard maps.

The probe planes are the exception: a file keeps only their anchors (which images), and each job makes the
points from them as it evaluates (500 CIFAR planes would be 15 GB of points).

At paper sizes a shard job spent 30-35 s generating the 50,000 synthetic training images and 17-18 s
building 13 shifted evaluation sets: the same tensors in each of a study's hundreds of jobs. The workflow
makes them once per dataset (rules prepare_dataset and prepare_eval_set) as torch files, and shard jobs
open them memory-mapped, reading only the pages they touch. Shifted sets are made on the CPU, so they are
the same bits whatever device trains on them. Where each file lies is planning's (chaosgrid.plan.paths).
"""

from __future__ import annotations

import zlib
from pathlib import Path

import torch

from chaosgrid.data import Dataset
from chaosgrid.store import load_torch_file, write_atomically

DATASET_FIELDS = ("x_train", "y_train", "x_test", "y_test", "mean", "std")


REMAKE = "delete it and run the workflow again, which remakes it"


def _checksum(tensor: torch.Tensor) -> int:
    """CRC-32 of a tensor's bytes (4 GB/s here: ~0.2 s for CIFAR-10's training and test sets)."""
    return zlib.crc32(tensor.reshape(-1).view(torch.uint8).numpy())


def _save(tensors: dict[str, torch.Tensor], path: Path | str) -> None:
    """Write tensors with their checksums: a flipped bit in a file that every shard maps is found when one
    opens it, not as a wrong result."""
    tensors = {k: v.cpu().contiguous() for k, v in tensors.items()}
    checksums = {k: _checksum(v) for k, v in tensors.items()}
    write_atomically(path, lambda tmp: torch.save({**tensors, "checksums": checksums}, tmp))


def _load(path: Path | str) -> dict[str, torch.Tensor]:
    """The tensors of a prepared file, memory-mapped, each checked against its checksum (files prepared
    before checksums have none); a truncated or corrupt file is named with what to do."""

    if not Path(path).exists():
        raise FileNotFoundError(
            f"prepared input {path} not found; the workflow makes it (`chaosgrid prepare`)"
        )
    tensors = load_torch_file(path, REMAKE, mmap=True)
    for name, expected in tensors.pop("checksums", {}).items():
        if _checksum(tensors[name]) != expected:
            raise ValueError(
                f"{path}: its {name} does not match the checksum written with it (the file is "
                f"corrupt): {REMAKE}"
            )
    return tensors


def save_dataset(data: Dataset, path: Path | str) -> Path:
    _save(
        {**{k: getattr(data, k) for k in DATASET_FIELDS}, "num_classes": torch.tensor(data.num_classes)}, path
    )
    return path


def load_dataset(name: str, path: Path | str) -> Dataset:
    """The dataset `name` as prepared in the file `path`, on the CPU, memory-mapped. Files prepared before
    datasets carried their class count hold a built-in 10-class set."""

    tensors = _load(path)
    return Dataset(
        name, **{k: tensors[k] for k in DATASET_FIELDS}, num_classes=int(tensors.get("num_classes", 10))
    )


def save_eval_set(x: torch.Tensor, y: torch.Tensor, path: Path | str) -> None:
    _save({"x": x, "y": y}, path)


def load_eval_set(path: Path | str) -> tuple[torch.Tensor, torch.Tensor]:
    tensors = _load(path)
    return tensors["x"], tensors["y"]


def save_triplets(trip: torch.Tensor, path: Path | str) -> None:
    _save({"triplets": trip}, path)


def load_triplets(path: Path | str) -> torch.Tensor:
    return _load(path)["triplets"]
