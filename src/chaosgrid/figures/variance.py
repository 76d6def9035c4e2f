"""Figures of the run-to-run variance analysis (chaosgrid.analysis.variance)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from chaosgrid.evalsets import CLEAN, clean_rows
from chaosgrid.figures import _interval, _panels, _placeholders, _within_percent, placeholder, save
from chaosgrid.plan.analyses import ANALYSES


def variance_by_axis(variance: pd.DataFrame, axes: list[str], path: Path | str, study: str) -> None:
    """Per axis: each grid point's observed run-to-run std of clean accuracy with its 95% interval (Bonett's),
    beside the std that per-example coin flips alone predict (binomial, with its jackknife interval), and the
    averages over the grid points at each value of the observed, predicted and distribution-wise std."""
    points = clean_rows(variance)
    axes = axes or ["_all"]
    points = points.assign(_all="all runs")
    fig, axs = _panels(len(axes))
    for ax, axis in zip(axs[0], axes):
        values = sorted(points[axis].unique(), key=str) if axis == "_all" else sorted(points[axis].unique())
        x = points[axis].map({v: i for i, v in enumerate(values)}).to_numpy(dtype=float)
        x = x + np.random.default_rng(0).uniform(-0.15, 0.15, len(x))
        for column, shift, colour, label in (
            ("std_acc", -0.05, "tab:blue", "observed, grid point"),
            ("std_binomial", 0.05, "tab:orange", "coin flips predict, grid point"),
        ):
            centre = 100 * points[column].to_numpy(dtype=float)
            if column == "std_acc":
                low, high = 100 * points["std_acc_lo"], 100 * points["std_acc_hi"]
            else:
                low, high = (
                    100 * np.sqrt(points[f"var_binomial_{end}"].clip(lower=0)) for end in ("lo", "hi")
                )
            ax.errorbar(
                x + shift,
                centre,
                yerr=_interval(centre, low, high),
                fmt="o",
                ms=3,
                alpha=0.5,
                color=colour,
                elinewidth=0.8,
                label=label,
            )
        means = points.groupby(axis)[["std_acc", "std_binomial", "std_distribution"]].mean().reindex(values)
        for column, colour, label in (
            ("std_acc", "tab:blue", "observed, average"),
            ("std_binomial", "tab:orange", "coin flips predict, average"),
            ("std_distribution", "tab:green", "distribution-wise, average"),
        ):
            ax.plot(range(len(values)), 100 * means[column], "-", lw=1.8, label=label, color=colour)
        ax.set_xticks(range(len(values)), [str(v) for v in values])
        ax.set_xlabel("" if axis == "_all" else axis)
    axs[0, 0].set_ylabel("std of accuracy (pp)")
    axs[0, 0].legend(fontsize=6)
    fig.suptitle(
        f"{study}: run-to-run std of clean accuracy, observed vs what per-example coin flips predict "
        f"(bars: 95% intervals)",
        fontsize=10,
    )
    fig.tight_layout()
    save(fig, path)


def independence(
    independence_df: pd.DataFrame,
    variance: pd.DataFrame,
    axes: list[str],
    path: Path | str,
    study: str,
    panels: int = 4,
) -> None:
    """Histograms of observed run accuracies vs the Poisson-binomial prediction for the grid points farthest
    from and closest to independent errors (highest and lowest observed / predicted variance ratio), each
    titled with its point and ratio, so a reader knows which of the study's points are shown and why."""
    ranked = clean_rows(variance).dropna(subset=["ratio"]).sort_values("ratio", ascending=False)
    if len(ranked) > panels:
        ranked = pd.concat([ranked.head(panels // 2), ranked.tail(panels - panels // 2)])
    fig, axs = _panels(len(ranked))
    for ax, (_, point) in zip(axs[0], ranked.iterrows()):
        rows = independence_df
        for a in axes:
            rows = rows[rows[a] == point[a]]
        observed, predicted = (100 * rows.loc[rows["kind"] == k, "acc"] for k in ("observed", "predicted"))
        bins = np.linspace(
            min(observed.min(), predicted.min()), max(observed.max(), predicted.max()) + 1e-9, 16
        )
        ax.hist(
            predicted,
            bins=bins,
            density=True,
            alpha=0.5,
            color="tab:orange",
            label="predicted if independent",
        )
        ax.hist(
            observed,
            bins=bins,
            density=True,
            histtype="step",
            lw=2,
            color="tab:blue",
            label=f"observed ({len(observed)} runs)",
        )
        where = "\n".join(f"{a}={point[a]}" for a in axes) or "all runs"
        ax.set_title(
            f"{where}\nvariance ratio {point['ratio']:.2f} [{point['ratio_lo']:.2f}, {point['ratio_hi']:.2f}]",
            fontsize=8,
        )
        ax.set_xlabel("clean test accuracy (%)")
    axs[0, 0].set_ylabel("density")
    axs[0, 0].legend(fontsize=7)
    which = (
        f"the {panels // 2} grid points farthest from and {panels - panels // 2} closest to independent errors, "
        f"of {len(clean_rows(variance))}"
        if len(clean_rows(variance)) > panels
        else "every grid point"
    )
    fig.suptitle(
        f"{study}: accuracy over runs vs independent per-example errors (Poisson-binomial): {which}",
        fontsize=10,
    )
    fig.tight_layout()
    save(fig, path)


def churn(churn_df: pd.DataFrame, axes: list[str], path: Path | str, study: str) -> None:
    """Mean fraction of clean test predictions that differ: between independent seeds, and vs unperturbed twins."""
    fig, ax = plt.subplots(figsize=(max(5, 0.5 * len(churn_df) + 2), 3.8))
    labels = ["/".join(str(row[a]) for a in axes) for _, row in churn_df.iterrows()]
    twins = churn_df["comparison"] != "independent seeds"
    colours = np.where(twins, "tab:red", "tab:gray")
    mean = 100 * churn_df["mean_churn"].to_numpy()
    ax.bar(
        range(len(churn_df)),
        mean,
        yerr=_within_percent(mean, 100 * churn_df["std_churn"]),
        color=colours,
        capsize=3,
    )
    ax.set_xticks(range(len(churn_df)), labels, rotation=90, fontsize=7)
    ax.set_xlabel("grid point: " + "/".join(axes) if axes else "")
    ax.set_ylabel("predictions that differ (%)")
    legend = (
        "grey: two independent seeds; red: perturbed run vs its unperturbed twin"
        if twins.any()
        else "between two independent seeds"
    )
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
        right.plot(
            severities, [100 * clean["std_distribution"], *100 * rows["std_distribution"]], "-o", label=name
        )
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
    independence(tables["independence"], tables["variance"], axes, out / "independence.png", study)
    churn(tables["churn"], axes, out / "churn.png", study)
    variance_vs_shift(tables["variance"], out / "variance_vs_shift.png", study)
    return "4 figures"
