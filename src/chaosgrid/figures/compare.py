"""The figure of the comparisons analysis (chaosgrid.analysis.compare)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import ticker

from chaosgrid.analysis.compare import DELTAS
from chaosgrid.evalsets import eval_name
from chaosgrid.figures import _placeholders, save
from chaosgrid.plan.analyses import ANALYSES


def comparisons(table: pd.DataFrame, path: Path | str, study: str, most: int = 24) -> None:
    """One panel per evaluation set (clean first): each comparison's difference in mean accuracy with its
    two intervals (dark: on this test set; light: on the distribution), main effects (pooled over the other
    axes) first, a filled mark where Holm's verdict over the set's comparisons holds. Last: runs per arm for
    80% power vs the difference to detect on the clean set, one faint line per comparison, the median bold."""

    key = ["axis", "a", "b", "at"]
    clean = table[(table["shift"] == "clean") & (table["severity"] == 0)]
    main = clean["at"].str.startswith("pooled")
    pairs = clean[~main]
    room = max(most - int(main.sum()), 0)
    if len(pairs) > room:
        pairs = pairs.iloc[np.sort(np.random.default_rng(0).choice(len(pairs), room, replace=False))]
    shown = pd.concat([clean[main], pairs])
    sets = list(dict.fromkeys(zip(table["shift"], table["severity"], strict=True)))
    fig, panels = plt.subplots(
        1,
        len(sets) + 1,
        figsize=(3.6 * len(sets) + 4.5, 1.4 + 0.3 * max(len(shown), 8)),
        gridspec_kw={"width_ratios": [1] * len(sets) + [1.1]},
        squeeze=False,
    )
    y = np.arange(len(shown))[::-1]
    for ax, (shift, severity) in zip(panels[0], sets, strict=False):
        rows = shown[key].merge(
            table[(table["shift"] == shift) & (table["severity"] == severity)], on=key, how="left"
        )
        ax.hlines(
            y,
            100 * rows["distribution_lo"],
            100 * rows["distribution_hi"],
            color="tab:blue",
            alpha=0.3,
            lw=6,
            label="on the distribution (+ test-set draw)",
        )
        ax.hlines(
            y,
            100 * rows["test_set_lo"],
            100 * rows["test_set_hi"],
            color="tab:blue",
            lw=2,
            label="on this test set (run-to-run)",
        )
        held = rows["test_set_verdict_holm"] != "no evidence"
        ax.plot(100 * rows["diff"][held], y[held], "o", color="k", ms=4, label="Holm: a difference")
        ax.plot(
            100 * rows["diff"][~held], y[~held], "o", mfc="white", color="k", ms=4, label="Holm: no evidence"
        )
        ax.axvline(0, color="0.4", lw=0.8)
        made = int(rows["comparisons"].max())
        ax.set_title(f"{eval_name(shift, severity)} ({made} comparison{'s' * (made != 1)})", fontsize=9)
        ax.set_xlabel("A - B, mean accuracy (points)", fontsize=8)
        ax.set_yticks(
            y,
            []
            if ax is not panels[0][0]
            else [
                f"{r['axis']} {r['a']} vs {r['b']}" + (f" ({r['at']})" if r["at"] else "")
                for _, r in shown.iterrows()
            ],
            fontsize=7,
        )
        ax.grid(axis="x", alpha=0.3)
    for label in panels[0][0].get_yticklabels():
        label.set_fontweight("bold" if "pooled" in label.get_text() else "normal")
    fig.legend(
        *panels[0][0].get_legend_handles_labels(),
        loc="upper center",
        bbox_to_anchor=(0.4, 0.0),
        ncol=4,
        fontsize=8,
        frameon=False,
    )
    runs_ax = panels[0][-1]
    for kind, colour, name in (
        ("test_set", "tab:blue", "this test set"),
        ("distribution", "tab:green", "the distribution"),
    ):
        # where no distribution-wise spread is detected, its runs needed are not known (compare's text says so)
        rows = clean if kind == "test_set" else clean[clean["se_distribution_runs"] > 0]
        if rows.empty:
            runs_ax.plot([], [], "o-", color=colour, label=f"on {name}: no spread detected")
            continue
        needed = np.array(
            [[r[f"runs_{kind}_{d:g}pt"] for d in DELTAS] for _, r in rows.iterrows()], dtype=float
        )
        needed = np.where(np.isfinite(needed), needed, np.nan)
        for line in needed:
            runs_ax.plot(DELTAS, line, color=colour, alpha=0.12, lw=1)
        of = "" if len(rows) == len(clean) else f" of {len(rows)} with distribution-wise spread"
        runs_ax.plot(
            DELTAS, np.nanmedian(needed, axis=0), "o-", color=colour, lw=2, label=f"on {name} (median{of})"
        )
    runs_ax.set_xscale("log")
    runs_ax.set_yscale("log")
    for axis in (runs_ax.xaxis, runs_ax.yaxis):
        axis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    runs_ax.set_xticks(DELTAS)
    runs_ax.set_xlabel("difference to detect (points)")
    runs_ax.set_ylabel("runs per arm and grid point\n(80% power, 5% test)")
    runs_ax.grid(alpha=0.3, which="both")
    runs_ax.legend(fontsize=7, loc="lower left")  # the curves fall from upper left to lower right
    runs_ax.set_title("seeds needed, clean test set", fontsize=9)
    hidden = (
        ""
        if len(shown) == len(clean)
        else f" ({len(shown)} of {len(clean)} comparisons shown, main effects first)"
    )
    fig.suptitle(f"{study}: are neighbouring grid points different? 95% intervals{hidden}")
    fig.tight_layout()
    save(fig, path)


def draw(tables: dict[str, pd.DataFrame], axes: list[str], study: str, out: Path) -> str:
    """The comparison figure of a study, from its comparisons table."""
    if tables["comparisons"].empty:
        return _placeholders(
            out, ANALYSES["compare"].figures, f"{study}: no two neighbouring grid points with 2+ runs each"
        )
    comparisons(tables["comparisons"], out / "comparisons.png", study)
    return "1 figure"
