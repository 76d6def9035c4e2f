"""The figure of a study that adds seeds until its comparisons are decided (chaosgrid.analysis.sequential)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from chaosgrid.figures import _interval, _placeholders, save
from chaosgrid.plan.analyses import ANALYSES

STATUS_COLOURS = {"success": "tab:green", "futility": "tab:purple", "budget": "tab:gray", "open": "tab:blue"}


def sequential(looks: pd.DataFrame, path: Path | str, study: str) -> None:
    """One panel per comparison: A - B with its repeated 95% interval at each look (seeds per grid point so
    far), the band ±delta, and how the comparison stopped."""
    names = list(dict.fromkeys(looks["comparison"]))
    fig, axs = plt.subplots(1, len(names), figsize=(3.8 * len(names), 3.2), squeeze=False)  # own scales
    for ax, name in zip(axs[0], names, strict=False):
        rows = looks[looks["comparison"] == name]
        last = rows.iloc[-1]
        delta = 100 * last["delta"]
        ax.axhspan(-delta, delta, color="tab:purple", alpha=0.08, label=f"|A - B| < delta = {delta:g}")
        ax.axhline(0, color="0.4", lw=0.8)
        centre, low, high = (100 * rows[c].to_numpy() for c in ("diff", "lo", "hi"))
        ax.errorbar(
            rows["seeds"],
            centre,
            yerr=_interval(centre, low, high),
            fmt="o-",
            capsize=3,
            color=STATUS_COLOURS[last["status"]],
            label="A - B, repeated 95% interval",
        )
        ax.set_xticks(np.arange(1, last["max_seeds"] // (rows["seeds"].iloc[0]) + 1) * rows["seeds"].iloc[0])
        ax.set_xlim(0, last["max_seeds"] + rows["seeds"].iloc[0] / 2)
        ax.set_title(
            f"{name}\n{last['status']} after {int(last['seeds'])} seeds: {last['verdict']}", fontsize=8
        )
        ax.set_xlabel("seeds per grid point")
    axs[0, 0].set_ylabel("A - B, clean test accuracy (points)")
    axs[0, 0].legend(fontsize=6, loc="best")
    fig.suptitle(
        f"{study}: seeds until the answer is known (one look per block; intervals valid at every look)",
        fontsize=10,
    )
    fig.tight_layout()
    save(fig, path)


def draw(tables: dict[str, pd.DataFrame], axes: list[str], study: str, out: Path) -> str:
    """The sequential figure of a study, from its looks table."""
    if tables["looks"].empty:
        return _placeholders(out, ANALYSES["sequential"].figures, f"{study}: no comparison could be judged")
    sequential(tables["looks"], out / "sequential.png", study)
    return "1 figure"
