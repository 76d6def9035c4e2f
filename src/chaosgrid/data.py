"""Datasets as whole tensors, and batching as index arithmetic on them.

Every dataset is held as float32 images (N, C, H, W) with int64 labels (pixels in [0, 1]; 1-D signals as
(N, C, 1, L), standardised), so a shard loads it once, keeps it on the training device, and draws batches
by indexing. Randomness lives in explicit
`torch.Generator`s on the CPU (one per run for batch order, one for augmentation), so a run's batches are
the same on any device. Normalisation happens last, after augmentation or a distribution shift.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from chaosgrid import plugins
from chaosgrid.downloads import (
    CIFAR10_1_FILES,
    CIFAR10_C_LABELS,
    CIFAR10_FILES,
    CIFAR100_FILES,
    MNIST_FILES,
    SOURCES,
    SVHN_FILES,
)
from chaosgrid.plan.own import NPZ_ARRAYS
from chaosgrid.sampling import generator

SYNTHETIC_CLASSES = 10  # the shape classes of the synthetic set
MAX_CLASSES = 256  # predictions are stored as uint8 (chaosgrid.store)
DOWNLOAD_HELP = (
    "The workflow downloads it (rule download_data); by hand: `chaosgrid download {name} --data-root {root}`, "
    "or point --data-root / CHAOSGRID_DATA at a folder that holds it."
)


@dataclass(frozen=True)
class Dataset:
    """A classification task held in memory: images (or signals) and per-channel statistics for normalising."""

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: torch.Tensor  # (C,), of the training images
    std: torch.Tensor  # (C,)
    num_classes: int = 10  # a property of the dataset: one more than its largest label

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Dataset:
        """The dataset on `device`, its images and statistics as `dtype` (labels stay integers). Models
        train in the images' dtype: float64 lets a test compare engines without float32 rounding, which
        depends on the CPU's kernels."""
        moved = {k: getattr(self, k).to(device) for k in ("y_train", "y_test")}
        moved |= {k: getattr(self, k).to(device, dtype) for k in ("x_train", "x_test", "mean", "std")}
        return replace(self, **moved)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean[:, None, None]) / self.std[:, None, None]


def _make(name: str, x_train, y_train, x_test, y_test, classes: int = 0) -> Dataset:
    """A Dataset from arrays (images N x C x H x W, 1-D signals N x C x 1 x L), normalised by the training
    set's per-channel statistics; its class count is `classes` (a published set's), else one more than its
    largest label."""
    x_train, x_test = (
        torch.as_tensor(x_train, dtype=torch.float32),
        torch.as_tensor(x_test, dtype=torch.float32),
    )
    y_train, y_test = torch.as_tensor(y_train, dtype=torch.int64), torch.as_tensor(y_test, dtype=torch.int64)
    num_classes = max(classes, int(max(y_train.max(), y_test.max())) + 1)
    if num_classes > MAX_CLASSES or min(y_train.min(), y_test.min()) < 0:
        raise ValueError(
            f"dataset {name!r}: labels must be integers in 0..{MAX_CLASSES - 1} (predictions are "
            f"stored as uint8); found {int(min(y_train.min(), y_test.min()))}..{num_classes - 1}"
        )
    return Dataset(
        name,
        x_train,
        y_train,
        x_test,
        y_test,
        x_train.mean(dim=(0, 2, 3)),
        x_train.std(dim=(0, 2, 3)).clamp_min(1e-3),
        num_classes,
    )


def digits(test_fraction: float = 0.2) -> Dataset:
    """scikit-learn's bundled 8x8 handwritten digits (1,797 images, no network), split by a fixed permutation."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.images.astype(np.float32)[:, None] / 16.0
    y = bunch.target
    order = np.random.default_rng(0).permutation(len(y))
    n_test = round(len(y) * test_fraction)
    test, train = order[:n_test], order[n_test:]
    return _make("digits", x[train], y[train], x[test], y[test])


def _shape_masks(kind: torch.Tensor, dx: torch.Tensor, dy: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Foreground mask of each image's class shape, given pixel offsets from its centre and its radius."""
    d = torch.sqrt(dx**2 + dy**2)
    box = torch.maximum(dx.abs(), dy.abs())
    masks = torch.stack(
        [
            d < r,  # disk
            box < r * 0.85,  # square
            (d - r).abs() < r * 0.3,  # ring
            ((dx.abs() < r / 3) & (dy.abs() < r)) | ((dy.abs() < r / 3) & (dx.abs() < r)),  # cross
            dx.abs() + dy.abs() < r,  # diamond
            (box < r) & (torch.sin(dy * 1.6) > 0),  # horizontal stripes
            (box < r) & (torch.sin(dx * 1.6) > 0),  # vertical stripes
            (box < r) & (torch.sin(dx * 1.6) * torch.sin(dy * 1.6) > 0),  # checkerboard
            (dy > -r) & (dy < r) & (dx.abs() < (dy + r) / 2),  # triangle
            ((dx - dy).abs() < r / 2.5) & (box < r),  # diagonal bar
        ]
    )
    return masks.gather(0, kind[None, :, None, None].expand(1, *dx.shape)).squeeze(0)


def synthetic_images(n: int, seed: int, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """A CIFAR-shaped task: ten shape classes drawn at random position, size and colour on textured noise.

    The class is carried by the shape alone; position, scale, colours, background texture and pixel noise
    are nuisances, and a class-dependent colour tint gives a weak second cue. Hard enough that small nets
    do not saturate it, so run-to-run variance is visible.
    """
    g = generator("synthetic", seed)
    y = torch.randint(0, SYNTHETIC_CLASSES, (n,), generator=g)
    coords = torch.arange(size, dtype=torch.float32)
    centre = size / 2 + (torch.rand(n, 2, generator=g) - 0.5) * size * 0.4
    radius = size * (0.16 + 0.16 * torch.rand(n, generator=g))
    dx = coords[None, None, :] - centre[:, 0, None, None]
    dy = coords[None, :, None] - centre[:, 1, None, None]
    rotate = torch.rand(n, generator=g) < 0.5  # swap axes: rotates stripes and triangles by 90 degrees
    dx, dy = torch.where(rotate[:, None, None], dy, dx), torch.where(rotate[:, None, None], dx, dy)
    mask = _shape_masks(y, dx, dy, radius[:, None, None]).float()[:, None]
    tint = torch.rand(SYNTHETIC_CLASSES, 3, generator=torch.Generator().manual_seed(7))
    foreground = 0.6 * torch.rand(n, 3, generator=g) + 0.4 * tint[y]
    background = torch.rand(n, 3, generator=g)
    texture = torch.nn.functional.interpolate(
        torch.rand(n, 1, size // 4, size // 4, generator=g), size=size, mode="bilinear", align_corners=False
    )
    back = background[:, :, None, None] * (0.6 + 0.4 * texture)
    x = mask * foreground[:, :, None, None] + (1 - mask) * back
    x = x + 0.08 * torch.randn(x.shape, generator=g)
    return x.clamp(0, 1), y


def synthetic(n_train: int = 5000, n_test: int = 1000, seed: int = 0) -> Dataset:
    """The synthetic task; train and test come from disjoint random streams of the same distribution."""
    x_train, y_train = synthetic_images(n_train, seed)
    x_test, y_test = synthetic_images(n_test, seed + 1_000_003)
    name = "synthetic" if n_train == 5000 else f"synthetic{n_train // 1000}k"
    return _make(name, x_train, y_train, x_test, y_test)


def mnist1d(n_train: int = 2000, n_test: int = 10_000) -> Dataset:
    """MNIST-1D (Greydanus 2020): 1-D signals of length 40 in 10 classes, held as (N, 1, 1, 40) "images".

    Generated offline with the package's `make_dataset` (its default seed 42 and transforms; never its
    downloader), 2k training and 10k test signals: a test set large enough that a 0.5-point difference is
    three binomial standard deviations. The generator seeds numpy's and Python's global RNGs, so both are
    restored afterwards.
    """
    import random

    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.train_split = n_train + n_test, n_train / (n_train + n_test)
    states = random.getstate(), np.random.get_state()
    try:
        made = make_dataset(args)
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
    as_images = lambda a: np.asarray(a, dtype=np.float32)[:, None, None, :]
    return _make("mnist1d", as_images(made["x"]), made["y"], as_images(made["x_test"]), made["y_test"])


def _published(name: str, root: Path, *files: str) -> Path:
    """The folder of published source `name` under `root`, or a clear error naming the first missing file."""
    folder = root / SOURCES[name].folder
    for file in files:
        if not (folder / file).exists():
            help_ = DOWNLOAD_HELP.format(name=name, root=root)
            raise FileNotFoundError(f"{name} not found: looked for {folder / file}. {help_}")
    return folder


def cifar10(root: Path) -> Dataset:
    """CIFAR-10 from torchvision's on-disk format (download=False: this machine has no network)."""
    from torchvision.datasets import CIFAR10

    class UncheckedCIFAR10(CIFAR10):
        """torchvision's reader without its MD5 checks, which reject subsets and re-encoded copies."""

        def _check_integrity(self) -> bool:
            return _published("cifar10", Path(self.root), CIFAR10_FILES[0]).exists()

        def _load_meta(self) -> None:
            self.classes = [f"class{i}" for i in range(10)]

    _published("cifar10", root, CIFAR10_FILES[0])  # torchvision's own message does not say where it looked
    train, test = (UncheckedCIFAR10(str(root), train=t, download=False) for t in (True, False))
    to_x = lambda d: torch.from_numpy(d.data).permute(0, 3, 1, 2).float() / 255.0
    return _make("cifar10", to_x(train), train.targets, to_x(test), test.targets, classes=10)


def cifar100(root: Path) -> Dataset:
    """CIFAR-100 (fine labels) from torchvision's on-disk format in `root/cifar-100-python`."""
    from torchvision.datasets import CIFAR100

    class UncheckedCIFAR100(CIFAR100):
        def _check_integrity(self) -> bool:  # as UncheckedCIFAR10: subsets and re-encoded copies are fine
            return True

        def _load_meta(self) -> None:
            self.classes = [f"class{i}" for i in range(100)]

    _published("cifar100", root, *CIFAR100_FILES)
    train, test = (UncheckedCIFAR100(str(root), train=t, download=False) for t in (True, False))
    to_x = lambda d: torch.from_numpy(d.data).permute(0, 3, 1, 2).float() / 255.0
    return _make("cifar100", to_x(train), train.targets, to_x(test), test.targets, classes=100)


def svhn(root: Path) -> Dataset:
    """SVHN's cropped digits (train and test, not extra) from their .mat files in `root/svhn`, read by
    torchvision (label 10 is digit 0)."""
    from torchvision.datasets import SVHN

    class UncheckedSVHN(SVHN):
        def _check_integrity(self) -> bool:
            return True

    folder = _published("svhn", root, *SVHN_FILES)
    train, test = (UncheckedSVHN(str(folder), split=s, download=False) for s in ("train", "test"))
    to_x = lambda d: torch.from_numpy(d.data).float() / 255.0  # already N x 3 x 32 x 32
    return _make("svhn", to_x(train), train.labels, to_x(test), test.labels, classes=10)


def mnist(root: Path, name: str = "mnist") -> Dataset:
    """MNIST (or, with name="fashion_mnist", Fashion-MNIST) from its idx files in the source's folder, read by
    torchvision: 28x28 grey images."""
    from torchvision.datasets import MNIST

    folder = _published(name, root, *MNIST_FILES)

    class FolderMNIST(MNIST):
        @property
        def raw_folder(self) -> str:  # the idx files lie in the source's folder itself
            return str(folder)

    train, test = (FolderMNIST(str(root), train=t, download=False) for t in (True, False))
    to_x = lambda d: d.data[:, None].float() / 255.0
    return _make(name, to_x(train), train.targets, to_x(test), test.targets, classes=10)


def _npy_images(path: Path) -> torch.Tensor:
    return torch.from_numpy(np.load(path)).permute(0, 3, 1, 2).float() / 255.0


def cifar10_1(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10.1 (v6) from its .npy files in `root/cifar10.1`: 2,000 new test images."""
    data, labels = CIFAR10_1_FILES
    folder = _published("cifar10_1", root, data, labels)
    return _npy_images(folder / data), torch.from_numpy(np.load(folder / labels)).long()


def cifar10_c(root: Path, corruption: str, severity: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One corruption and severity of CIFAR-10-C: rows (severity-1)*10000 ... of `root/CIFAR-10-C/<c>.npy`."""
    folder = _published("cifar10_c", root, f"{corruption}.npy", CIFAR10_C_LABELS)
    images = np.load(folder / f"{corruption}.npy", mmap_mode="r")
    labels = np.load(folder / CIFAR10_C_LABELS, mmap_mode="r")
    n = len(images) // 5
    rows = slice((severity - 1) * n, severity * n)
    x = torch.from_numpy(np.array(images[rows])).permute(0, 3, 1, 2).float() / 255.0
    return x, torch.from_numpy(np.array(labels[rows])).long()


def own_arrays(name: str) -> dict:
    """The user's dataset as arrays: `npz:<path>`, a file holding x_train, y_train, x_test, y_test (any
    framework can write one), or `package.module:function` returning them (a mapping with those keys, or a
    tuple in that order; numpy arrays or tensors; images N x C x H x W or signals N x C x L; integer labels).
    Further pairs x_<set>, y_<set> are evaluation sets, named `own_<set>` in a study's shifts."""
    if name.startswith("npz:"):
        path = Path(name.removeprefix("npz:"))
        if not path.is_file():
            raise FileNotFoundError(f"dataset {name!r}: no file {path}")
        with np.load(path) as npz:
            return {key: npz[key] for key in npz.files}
    arrays = plugins.load(name)()
    if isinstance(arrays, (tuple, list)) and len(arrays) == len(NPZ_ARRAYS):
        return dict(zip(NPZ_ARRAYS, arrays, strict=True))
    if not isinstance(arrays, Mapping):
        got = type(arrays).__name__
        got = f"a {got} of {len(arrays)}" if isinstance(arrays, (tuple, list)) else got
        raise ValueError(  # noqa: TRY004 -- bad data, as every other check here: the jobs report ValueErrors
            f"dataset {name!r} returned {got}; it must return a mapping with keys {', '.join(NPZ_ARRAYS)} (and "
            f"x_<set>, y_<set> for further evaluation sets), or a tuple of those four arrays"
        )
    return dict(arrays)


def own(name: str) -> Dataset:
    """The user's dataset (`own_arrays`), checked."""
    return from_arrays(name, own_arrays(name))


def own_set(name: str, subset: str) -> tuple[torch.Tensor, torch.Tensor]:
    """A further evaluation set of the user's dataset: its arrays x_<subset> and y_<subset>, checked alike."""
    arrays = own_arrays(name)
    if f"x_{subset}" not in arrays or f"y_{subset}" not in arrays:
        sets = sorted(k[2:] for k in arrays if k.startswith("x_") and k[2:] not in ("train", "test"))
        raise ValueError(
            f"dataset {name!r} has no evaluation set {subset!r} (arrays x_{subset}, y_{subset}); "
            f"its sets: {', '.join(sets) or 'none'}"
        )
    view = {
        "x_train": arrays[f"x_{subset}"],
        "y_train": arrays[f"y_{subset}"],
        "x_test": arrays[f"x_{subset}"],
        "y_test": arrays[f"y_{subset}"],
    }
    made = from_arrays(f"{name} ({subset})", view)
    return made.x_test, made.y_test


def from_arrays(name: str, arrays: dict) -> Dataset:
    """A Dataset from the user's arrays, checked: each named in the message when missing or malformed."""
    if missing := [key for key in NPZ_ARRAYS if key not in arrays]:
        raise ValueError(f"dataset {name!r} has no {missing[0]!r}; it must give {', '.join(NPZ_ARRAYS)}")
    x_train, y_train, x_test, y_test = (np.asarray(arrays[key]) for key in NPZ_ARRAYS)
    for key, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if x.ndim not in (3, 4) or y.ndim != 1 or len(x) != len(y) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(
                f"dataset {name!r}: x_{key} must be N x C x H x W images or N x C x L signals and "
                f"y_{key} N integer labels; got shapes {x.shape} and {y.shape} ({y.dtype})"
            )
    if x_train.shape[1:] != x_test.shape[1:]:
        raise ValueError(
            f"dataset {name!r}: x_train's examples are {x_train.shape[1:]}, x_test's {x_test.shape[1:]}"
        )
    shape = x_train.shape
    if x_train.ndim == 4 and shape[3] in (1, 3, 4) and shape[1] == shape[2] and shape[1] > 4:
        raise ValueError(
            f"dataset {name!r}: x_train is {shape}, which looks like N x H x W x C (channels last); "
            f"chaosgrid expects N x C x H x W: transpose it, e.g. x.transpose(0, 3, 1, 2)"
        )
    for key, values in (("x_train", x_train), ("x_test", x_test)):
        if not np.issubdtype(values.dtype, np.number) or np.issubdtype(values.dtype, np.complexfloating):
            raise ValueError(f"dataset {name!r}: {key} holds {values.dtype}; it must hold real numbers")
        if not np.isfinite(values).all():
            bad = int((~np.isfinite(values)).reshape(len(values), -1).any(1).sum())
            raise ValueError(
                f"dataset {name!r}: {key} holds NaN or inf values in {bad} of {len(values)} examples; "
                f"every run would diverge: clean or drop them"
            )
    as_images = lambda x: x[:, :, None, :] if x.ndim == 3 else x  # signals as (N, C, 1, L), as mnist1d
    return _make(
        name, as_images(x_train.astype(np.float32)), y_train, as_images(x_test.astype(np.float32)), y_test
    )


def load(name: str, root: Path | str = "data") -> Dataset:
    """The named dataset, on the CPU. Offline sets are built in memory; cifar10 is read from `root`; the
    user's own (`npz:<path>`, `package.module:function`) by `own`."""
    if name.startswith("npz:") or ":" in name:
        return own(name)
    if name == "digits":
        return digits()
    if name == "synthetic":
        return synthetic()
    if name == "synthetic50k":
        return synthetic(50_000, 10_000)
    if name == "mnist1d":
        return mnist1d()
    if name == "cifar10":
        return cifar10(Path(root))
    if name == "cifar100":
        return cifar100(Path(root))
    if name == "svhn":
        return svhn(Path(root))
    if name in ("mnist", "fashion_mnist"):
        return mnist(Path(root), name)
    raise ValueError(f"unknown dataset {name!r}")
