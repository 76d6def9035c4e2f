"""Figures of a study's tables (matplotlib, Agg): what a reader checks first about a grid of runs.

Each function takes the tidy `evals` frame (one row per run x evaluation set) or the `summary` frame
(one row per grid point x evaluation set) and writes one PNG atomically.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

CLEAN = ("clean", 0)


def save(fig: plt.Figure, path: Path | str) -> None:
    """Save to a temporary name beside `path`, then rename, so a crash leaves no half-written PNG."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".png", dir=path.parent)
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=130, bbox_inches="tight")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)


def _clean(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[(frame["shift"] == CLEAN[0]) & (frame["severity"] == CLEAN[1])]


def _panels(n: int, rows: int = 1, size: tuple[float, float] = (3.4, 3.0)):
    """A rows x n grid of panels sharing the y axis within each row."""
    n = max(n, 1)
    return plt.subplots(rows, n, figsize=(size[0] * n, size[1] * rows), squeeze=False, sharey="row")


def accuracy_distribution(evals: pd.DataFrame, axes: list[str], path: Path | str, study: str) -> None:
    """Per axis value: the distribution of clean test accuracy over runs (violin), pooled over other axes."""
    runs = _clean(evals).dropna(subset=["acc"])
    fig, axs = _panels(len(axes))
    if not axes:
        axs[0, 0].hist(100 * runs["acc"], bins=20, color="tab:blue")
        axs[0, 0].set_xlabel("clean test accuracy (%)")
        axs[0, 0].set_ylabel("runs")
    for ax, axis in zip(axs[0], axes):
        values = sorted(runs[axis].unique())
        groups = [100 * runs.loc[runs[axis] == v, "acc"].to_numpy() for v in values]
        ax.violinplot(groups, showextrema=False)
        means = [g.mean() for g in groups]
        stds = [g.std(ddof=1) if len(g) > 1 else 0 for g in groups]
        ax.errorbar(range(1, len(values) + 1), means, yerr=stds, fmt="o", color="black", capsize=4,
                    label="mean ± std")  # fmt: skip
        ax.set_xticks(range(1, len(values) + 1), [str(v) for v in values])
        ax.set_xlabel(axis)
        ax.legend(loc="lower right", fontsize=8)
    axs[0, 0].set_ylabel("clean test accuracy (%)")
    fig.suptitle(f"{study}: accuracy of {len(runs)} runs (pooled over the other axes)")
    save(fig, path)


def mean_std_by_axis(summary: pd.DataFrame, axes: list[str], path: Path | str, study: str) -> None:
    """Per axis: each grid point's mean accuracy (top) and run-to-run std over seeds (bottom) vs the axis value.

    Dots are grid points (one per combination of the other axes); the line joins their averages.
    """
    points = _clean(summary)
    fig, axs = _panels(len(axes), rows=2)
    for col, axis in enumerate(axes):
        values = sorted(points[axis].unique())
        position = {v: i for i, v in enumerate(values)}
        x = points[axis].map(position).to_numpy(dtype=float)
        jitter = np.random.default_rng(0).uniform(-0.08, 0.08, len(x))
        for row, column, label in ((0, "mean_acc", "mean accuracy (%)"), (1, "std_acc", "std over seeds (pp)")):
            ax = axs[row, col]
            ax.scatter(x + jitter, 100 * points[column], s=14, alpha=0.6, color="tab:blue")
            averages = points.groupby(axis)[column].mean()
            ax.plot(range(len(values)), 100 * averages.reindex(values).to_numpy(), "-o", color="black")
            ax.set_xticks(range(len(values)), [str(v) for v in values])
            ax.set_xlabel(axis)
            axs[row, 0].set_ylabel(label)
    fig.suptitle(f"{study}: mean and run-to-run std of clean accuracy along each axis (dots: grid points)")
    fig.tight_layout()
    save(fig, path)


def shifts(evals: pd.DataFrame, summary: pd.DataFrame, path: Path | str, study: str) -> None:
    """Accuracy (left) and run-to-run std (right) under each shift vs severity; severity 0 is the clean set."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    clean_acc = _clean(evals)["acc"]
    clean_std = _clean(summary)["std_acc"].mean()
    names = [s for s in evals["shift"].unique() if s != CLEAN[0]]
    for name in names:
        rows = evals[evals["shift"] == name].groupby("severity")["acc"]
        sev = [0, *rows.mean().index]
        left.errorbar(sev, 100 * np.array([clean_acc.mean(), *rows.mean()]),
                      yerr=100 * np.array([clean_acc.std(), *rows.std()]), marker="o", capsize=3, label=name)  # fmt: skip
        stds = summary[summary["shift"] == name].groupby("severity")["std_acc"].mean()
        right.plot(sev, 100 * np.array([clean_std, *stds]), marker="o", label=name)
    if not names:
        left.bar([0], [100 * clean_acc.mean()], yerr=[100 * clean_acc.std()])
    left.set_ylabel("test accuracy (%, mean ± std over all runs)")
    right.set_ylabel("std over seeds (pp, mean over grid points)")
    severities = sorted({0, *evals["severity"].unique()})
    for ax in (left, right):
        ax.set_xlabel("shift severity (0 = clean test set)")
        ax.set_xticks(severities)
    if names:
        left.legend(fontsize=8)
    fig.suptitle(f"{study}: accuracy and its run-to-run spread under distribution shift")
    fig.tight_layout()
    save(fig, path)
