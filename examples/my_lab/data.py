"""Datasets of the lab's own: a function returning arrays, and the same arrays as an .npz file."""

import sys

import numpy as np
from sklearn.datasets import make_classification


def load() -> dict[str, np.ndarray]:
    """A 5-class problem of 1-D signals (N x 1 x 24) from scikit-learn, split 1,000 / 1,000, and a shifted
    evaluation set of the lab's own (`shifts: [own_drifted]`): the test signals with a drift added."""
    x, y = make_classification(n_samples=2000, n_features=24, n_informative=12, n_classes=5,
                               n_clusters_per_class=2, class_sep=1.0, random_state=0)  # fmt: skip
    x = x.astype(np.float32)[:, None, :]
    drift = np.linspace(0, 1.5, 24, dtype=np.float32)
    return {"x_train": x[:1000], "y_train": y[:1000], "x_test": x[1000:], "y_test": y[1000:],
            "x_drifted": x[1000:] + drift, "y_drifted": y[1000:]}  # fmt: skip


def write_npz(path: str) -> None:
    """The same dataset as an .npz file, the form any framework can write: `dataset: {npz: path}`."""
    np.savez(path, **load())


if __name__ == "__main__":
    write_npz(sys.argv[1])
