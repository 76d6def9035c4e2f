"""Figures of the run-to-run variance analysis (chaosgrid.analysis.variance)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from chaosgrid.analysis import ANALYSES
from chaosgrid.evalsets import CLEAN, clean_rows
from chaosgrid.figures import _panels, _placeholders, _within_percent, placeholder, save


def variance_by_axis(variance: pd.DataFrame, axes: list[str], path: Path | str, study: str) -> None:
    """Per axis: observed run-to-run std of clean accuracy vs the independent-errors (binomial) prediction and
    the distribution-wise std, each averaged over the grid points at that axis value."""
    points = clean_rows(variance)
    axes = axes or ["_all"]
    points = points.assign(_all="all runs")
    fig, axs = _panels(len(axes))
    curves = (("std_acc", "observed (test set)", "tab:blue"), ("std_binomial", "predicted if independent", "tab:orange"),
              ("std_distribution", "distribution-wise", "tab:green"))  # fmt: skip
    for ax, axis in zip(axs[0], axes):
        values = sorted(points[axis].unique(), key=str) if axis == "_all" else sorted(points[axis].unique())
        means = points.groupby(axis)[[c for c, _, _ in curves]].mean().reindex(values)
        for column, label, colour in curves:
            ax.plot(range(len(values)), 100 * means[column], "-o", label=label, color=colour)
        ax.set_xticks(range(len(values)), [str(v) for v in values])
        ax.set_xlabel("" if axis == "_all" else axis)
    axs[0, 0].set_ylabel("std of accuracy (pp)")
    axs[0, 0].legend(fontsize=8)
    fig.suptitle(f"{study}: run-to-run std of clean accuracy, observed vs predicted from independent errors")
    fig.tight_layout()
    save(fig, path)


def independence(independence_df: pd.DataFrame, axes: list[str], path: Path | str, study: str, panels: int = 4) -> None:
    """Histograms of observed run accuracies vs the Poisson-binomial prediction, for up to `panels` grid points."""
    keys = axes or None
    groups = list(independence_df.groupby(keys)) if keys else [((), independence_df)]
    groups = sorted(groups, key=lambda g: -(g[1]["kind"] == "observed").sum())[:panels]
    fig, axs = _panels(len(groups))
    for ax, (values, rows) in zip(axs[0], groups):
        observed, predicted = (100 * rows.loc[rows["kind"] == k, "acc"] for k in ("observed", "predicted"))
        bins = np.linspace(min(observed.min(), predicted.min()), max(observed.max(), predicted.max()) + 1e-9, 16)
        ax.hist(predicted, bins=bins, density=True, alpha=0.5, color="tab:orange", label="predicted if independent")
        ax.hist(observed, bins=bins, density=True, histtype="step", lw=2, color="tab:blue",
                label=f"observed ({len(observed)} runs)")  # fmt: skip
        values = values if isinstance(values, tuple) else (values,)
        ax.set_title("\n".join(f"{a}={v}" for a, v in zip(axes, values)) or "all runs", fontsize=8)
        ax.set_xlabel("clean test accuracy (%)")
    axs[0, 0].set_ylabel("density")
    axs[0, 0].legend(fontsize=7)
    fig.suptitle(f"{study}: accuracy over runs vs independent per-example errors (Poisson-binomial)")
    fig.tight_layout()
    save(fig, path)


def churn(churn_df: pd.DataFrame, axes: list[str], path: Path | str, study: str) -> None:
    """Mean fraction of clean test predictions that differ: between independent seeds, and vs unperturbed twins."""
    fig, ax = plt.subplots(figsize=(max(5, 0.5 * len(churn_df) + 2), 3.8))
    labels = ["/".join(str(row[a]) for a in axes) for _, row in churn_df.iterrows()]
    twins = churn_df["comparison"] != "independent seeds"
    colours = np.where(twins, "tab:red", "tab:gray")
    mean = 100 * churn_df["mean_churn"].to_numpy()
    ax.bar(range(len(churn_df)), mean, yerr=_within_percent(mean, 100 * churn_df["std_churn"]), color=colours,
           capsize=3)  # fmt: skip
    ax.set_xticks(range(len(churn_df)), labels, rotation=90, fontsize=7)
    ax.set_xlabel("grid point: " + "/".join(axes) if axes else "")
    ax.set_ylabel("predictions that differ (%)")
    legend = "grey: two independent seeds; red: perturbed run vs its unperturbed twin" if twins.any() else \
        "between two independent seeds"  # fmt: skip
    ax.set_title(f"{study}: churn ({legend}; bars: ± std over pairs)", fontsize=9)
    save(fig, path)


def variance_vs_shift(variance: pd.DataFrame, path: Path | str, study: str) -> None:
    """Observed/predicted variance ratio (left) and distribution-wise std (right) vs shift severity."""
    names = [s for s in variance["shift"].unique() if s != CLEAN[0]]
    if not names:
        placeholder(path, f"{study}: no shifted evaluation sets (add `shifts` and `severities` to the study)")
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    clean = clean_rows(variance)[["ratio", "std_distribution"]].mean()
    for name in names:
        rows = variance[variance["shift"] == name].groupby("severity")[["ratio", "std_distribution"]].mean()
        rows = rows.drop(index=0, errors="ignore")
        severities = [0, *rows.index]
        left.plot(severities, [clean["ratio"], *rows["ratio"]], "-o", label=name)
        right.plot(severities, [100 * clean["std_distribution"], *100 * rows["std_distribution"]], "-o", label=name)
    left.axhline(1, color="black", lw=0.8, ls="--")
    left.set_ylabel("observed / predicted variance")
    right.set_ylabel("distribution-wise std (pp)")
    for ax in (left, right):
        ax.set_xlabel("shift severity (0 = clean test set)")
        ax.set_xticks(sorted({0, *variance["severity"].unique()}))
    left.legend(fontsize=8)
    fig.suptitle(f"{study}: does the independent-errors prediction hold under shift? (mean over grid points)")
    fig.tight_layout()
    save(fig, path)


def draw(tables: dict[str, pd.DataFrame], axes: list[str], study: str, out: Path) -> str:
    """The run-to-run variance figures of a study, from its variance tables."""
    if tables["variance"].empty:
        names = ANALYSES["variance"].figures
        return _placeholders(out, names, f"{study}: no grid point has 3 or more converged runs")
    variance_by_axis(tables["variance"], axes, out / "variance_by_axis.png", study)
    independence(tables["independence"], axes, out / "independence.png", study)
    churn(tables["churn"], axes, out / "churn.png", study)
    variance_vs_shift(tables["variance"], out / "variance_vs_shift.png", study)
    return "4 figures"
