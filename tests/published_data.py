"""Tiny copies of the published datasets in their real on-disk formats, and a local HTTP server for them
(this machine has no internet; the download code is tested against 127.0.0.1)."""

from __future__ import annotations

import functools
import hashlib
import http.server
import pickle
import tarfile
import threading
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from chaosgrid.standin import save_cifar10, save_cifar10_1, save_cifar10_c


def write_cifar10(root: Path, n: int = 20):
    """`root/cifar-10-batches-py` as torchvision reads it: batches of n images; the test batch returned."""
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (5 * n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, 5 * n).tolist()
    test = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), rng.integers(0, 10, n).tolist()
    save_cifar10(root, train, test)
    return test


def write_cifar100(root: Path, n: int = 30):
    """`root/cifar-100-python` as torchvision reads it: pickled train and test sets of n images with fine labels
    0..99 (and coarse ones), and the meta file; the test images and labels returned."""
    rng = np.random.default_rng(1)
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    for name in ("train", "test"):
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        fine = (np.arange(n) * 7 % 100).tolist()
        batch = {"data": images.transpose(0, 3, 1, 2).reshape(n, -1), "fine_labels": fine,
                 "coarse_labels": [f // 5 for f in fine]}  # fmt: skip
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f)
    with open(folder / "meta", "wb") as f:
        pickle.dump({"fine_label_names": [f"c{i}" for i in range(100)], "coarse_label_names": []}, f)
    return images, fine


def write_svhn(folder: Path, n: int = 12):
    """`train_32x32.mat` and `test_32x32.mat` as SVHN ships them (X: 32x32x3xN, y: N x 1 in 1..10, 10 for the
    digit 0); the test images (N x 32 x 32 x 3) and digits returned."""
    from scipy.io import savemat

    rng = np.random.default_rng(2)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train", "test"):
        images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
        digits = np.arange(n) % 10
        savemat(
            folder / f"{name}_32x32.mat",
            {"X": images.transpose(1, 2, 3, 0), "y": np.where(digits == 0, 10, digits)[:, None]},
        )
    return images, digits


def write_idx(folder: Path, n: int = 9, gzipped: bool = False):
    """MNIST's four idx files (big-endian magic numbers 2051/2049, sizes, then bytes), n 28x28 images each,
    optionally gzipped as published; the test images and labels returned."""
    import gzip
    import struct

    rng = np.random.default_rng(3)
    folder.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if gzipped else open
    for split in ("train", "t10k"):
        images, labels = (
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8),
            (np.arange(n) * 3 % 10).astype(np.uint8),
        )
        suffix = ".gz" if gzipped else ""
        with opener(folder / f"{split}-images-idx3-ubyte{suffix}", "wb") as f:
            f.write(struct.pack(">IIII", 2051, n, 28, 28) + images.tobytes())
        with opener(folder / f"{split}-labels-idx1-ubyte{suffix}", "wb") as f:
            f.write(struct.pack(">II", 2049, n) + labels.tobytes())
    return images, labels


def write_cifar10_1(folder: Path, n: int = 7) -> None:
    """The two .npy files of CIFAR-10.1 v6 in `folder`, n images, labels 0..n-1 mod 10."""
    rng = np.random.default_rng(0)
    save_cifar10_1(folder, rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8), np.arange(n) % 10)


def write_cifar10_c(root: Path, corruption: str = "fog") -> None:
    """`root/CIFAR-10-C` with one corruption of 4 images per severity (pixel value = severity - 1) and labels."""
    images = np.repeat(np.arange(5, dtype=np.uint8), 4)[:, None, None, None] * np.ones(
        (1, 32, 32, 3), np.uint8
    )
    save_cifar10_c(root, {corruption: images}, np.arange(20) % 10)


def tar_folder(folder: Path, archive: Path) -> str:
    """Pack `folder` (as its own top-level entry) into `archive` (.tar or .tar.gz); its MD5."""
    with tarfile.open(archive, "w:gz" if archive.name.endswith("gz") else "w") as tar:
        tar.add(folder, arcname=folder.name)
    return hashlib.md5(archive.read_bytes()).hexdigest()


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@contextmanager
def serving(folder: Path):
    """An HTTP server on 127.0.0.1 serving `folder`; yields its base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
