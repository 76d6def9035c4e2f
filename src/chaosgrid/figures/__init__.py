"""Figures of a study's tables (matplotlib, Agg): what a reader checks first about a grid of runs.

One module per analysis (`chaosgrid.figures.<analysis>`, its `draw` named in chaosgrid.plan.analyses.ANALYSES)
and `study` for the figures every study gets. Each function writes one PNG atomically.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from chaosgrid.store import write_atomically


def save(fig: plt.Figure, path: Path | str) -> None:
    """Save as PNG atomically (a crash leaves no half-written figure), then free the figure."""
    try:
        write_atomically(path, lambda tmp: fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight"))
    finally:
        plt.close(fig)


def placeholder(path: Path | str, message: str) -> None:
    """A figure that says why there is nothing to show (e.g. too few runs for a variance)."""
    fig, ax = plt.subplots(figsize=(6, 2))
    ax.axis("off")
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True)
    save(fig, path)


def _within_percent(mean: np.ndarray, std: np.ndarray) -> list[np.ndarray]:
    """Error bars of ± std around percentages, cut at 0 and 100 (a fraction of examples cannot pass them)."""
    mean, std = np.asarray(mean, dtype=float), np.asarray(std, dtype=float)
    return [np.minimum(std, mean), np.minimum(std, 100 - mean)]


def _interval(centre: np.ndarray, low: np.ndarray, high: np.ndarray) -> list[np.ndarray]:
    """errorbar's yerr for intervals [low, high] around centre: never negative (an interval of width 0, as
    when every run is identical, may sit a rounding error off its centre)."""
    return [np.clip(centre - low, 0, None), np.clip(high - centre, 0, None)]


def _panels(n: int, rows: int = 1, size: tuple[float, float] = (3.4, 3.0)):
    """A rows x n grid of panels sharing the y axis within each row."""
    n = max(n, 1)
    return plt.subplots(rows, n, figsize=(size[0] * n, size[1] * rows), squeeze=False, sharey="row")


def _placeholders(out: Path, names: tuple[str, ...], message: str) -> str:
    for name in names:
        placeholder(out / f"{name}.png", message)
    return f"{len(names)} placeholder figures ({message})"
