"""The figure of the comparisons analysis (chaosgrid.analysis.compare)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import ticker

from chaosgrid.analysis import ANALYSES
from chaosgrid.figures import _placeholders, save


def comparisons(table: pd.DataFrame, path: Path | str, study: str, most: int = 24) -> None:
    """Left: each neighbouring pair's difference in mean accuracy with its two intervals (dark: on this
    test set; light: on the distribution). Right: runs per arm for 80% power vs the difference to detect,
    one faint line per pair and the median in bold, for both questions."""
    from chaosgrid.analysis.compare import DELTAS

    shown = table if len(table) <= most else table.iloc[np.sort(np.random.default_rng(0).choice(len(table), most,
                                                                                                 replace=False))]  # fmt: skip
    fig, (diff_ax, runs_ax) = plt.subplots(1, 2, figsize=(13, 1.2 + 0.32 * max(len(shown), 8)),
                                           gridspec_kw={"width_ratios": [1.4, 1]})  # fmt: skip
    y = np.arange(len(shown))[::-1]
    diff = 100 * shown["diff"]
    diff_ax.hlines(y, 100 * shown["distribution_lo"], 100 * shown["distribution_hi"], color="tab:blue", alpha=0.35,
                   lw=6, label="on the distribution (+ test-set sampling)")  # fmt: skip
    diff_ax.hlines(y, 100 * shown["test_set_lo"], 100 * shown["test_set_hi"], color="tab:blue", lw=2,
                   label="on this test set (run-to-run)")  # fmt: skip
    diff_ax.plot(diff, y, "k|", ms=10)
    diff_ax.axvline(0, color="0.4", lw=0.8)
    labels = [f"{r['axis']} {r['a']} vs {r['b']}" + (f" ({r['at']})" if r["at"] else "") for _, r in shown.iterrows()]
    diff_ax.set_yticks(y, labels, fontsize=7)
    diff_ax.set_xlabel("A - B, mean clean test accuracy (points)")
    diff_ax.legend(fontsize=7, loc="best")
    diff_ax.set_title("difference with 95% intervals" + ("" if len(shown) == len(table)
                                                          else f" ({len(shown)} of {len(table)} pairs)"), fontsize=9)  # fmt: skip
    for kind, colour, name in (("test_set", "tab:blue", "this test set"), ("distribution", "tab:green", "the distribution")):
        needed = np.array([[r[f"runs_{kind}_{d:g}pt"] for d in DELTAS] for _, r in table.iterrows()], dtype=float)
        needed = np.where(np.isfinite(needed), needed, np.nan)
        for line in needed:
            runs_ax.plot(DELTAS, line, color=colour, alpha=0.12, lw=1)
        runs_ax.plot(DELTAS, np.nanmedian(needed, axis=0), "o-", color=colour, lw=2, label=f"on {name} (median)")
    runs_ax.set_xscale("log")
    runs_ax.set_yscale("log")
    for axis in (runs_ax.xaxis, runs_ax.yaxis):
        axis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    runs_ax.set_xticks(DELTAS)
    runs_ax.set_xlabel("difference to detect (points)")
    runs_ax.set_ylabel("runs per arm for 80% power at 5%")
    runs_ax.grid(alpha=0.3, which="both")
    runs_ax.legend(fontsize=8)
    runs_ax.set_title("seeds needed (from each pair's pooled std)", fontsize=9)
    fig.suptitle(f"{study}: are neighbouring grid points different?")
    fig.tight_layout()
    save(fig, path)


def draw(tables: dict[str, pd.DataFrame], axes: list[str], study: str, out: Path) -> str:
    """The comparison figure of a study, from its comparisons table."""
    if tables["comparisons"].empty:
        return _placeholders(out, ANALYSES["compare"].figures, f"{study}: no two neighbouring grid points with 2+ runs each")
    comparisons(tables["comparisons"], out / "comparisons.png", study)
    return "1 figure"
