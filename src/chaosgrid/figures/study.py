"""What every study gets: accuracy over runs, mean and run-to-run std along each axis, shifts, training curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import ticker

from chaosgrid.evalsets import CLEAN, clean_rows
from chaosgrid.figures import _interval, _panels, _placeholders, _within_percent, placeholder, save
from chaosgrid.plan.analyses import STUDY_FIGURES


def accuracy_distribution(evals: pd.DataFrame, axes: list[str], path: Path | str, study: str) -> None:
    """Per axis value: the distribution of clean test accuracy over runs (violin), pooled over other axes."""
    runs = clean_rows(evals).dropna(subset=["acc"])
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
        ax.errorbar(
            range(1, len(values) + 1), means, yerr=stds, fmt="o", color="black", capsize=4, label="mean ± std"
        )
        ax.set_xticks(range(1, len(values) + 1), [str(v) for v in values])
        ax.set_xlabel(axis)
        ax.legend(loc="lower right", fontsize=8)
    axs[0, 0].set_ylabel("clean test accuracy (%)")
    fig.suptitle(f"{study}: accuracy of {len(runs)} runs (pooled over the other axes)")
    save(fig, path)


def mean_std_by_axis(summary: pd.DataFrame, axes: list[str], path: Path | str, study: str) -> None:
    """Per axis: each grid point's mean accuracy (top) and run-to-run std over seeds (bottom) vs the axis value,
    with its 95% interval (the summary table's: t for the mean, Bonett's for the std).

    Dots are grid points (one per combination of the other axes); the line joins their averages. Whether two
    values differ is the comparisons figure's question (main effects with their intervals), not the line's.
    """
    points = clean_rows(summary)
    fig, axs = _panels(len(axes), rows=2)
    for col, axis in enumerate(axes):
        values = sorted(points[axis].unique())
        position = {v: i for i, v in enumerate(values)}
        x = points[axis].map(position).to_numpy(dtype=float)
        x = x + np.random.default_rng(0).uniform(-0.12, 0.12, len(x))
        for row, column, label in (
            (0, "mean_acc", "mean accuracy (%)"),
            (1, "std_acc", "std over seeds (pp)"),
        ):
            ax = axs[row, col]
            centre, low, high = (
                100 * points[c].to_numpy(dtype=float) for c in (column, f"{column}_lo", f"{column}_hi")
            )
            ax.errorbar(
                x,
                centre,
                yerr=_interval(centre, low, high),
                fmt="o",
                ms=3.5,
                alpha=0.6,
                color="tab:blue",
                elinewidth=0.8,
                label="grid point, 95% interval",
            )
            averages = points.groupby(axis)[column].mean()
            ax.plot(
                range(len(values)),
                100 * averages.reindex(values).to_numpy(),
                "-",
                color="black",
                lw=1.5,
                label="average over grid points",
            )
            ax.set_xticks(range(len(values)), [str(v) for v in values])
            ax.set_xlabel(axis)
            axs[row, 0].set_ylabel(label)
    axs[0, 0].legend(fontsize=7)
    fig.suptitle(
        f"{study}: mean and run-to-run std of clean accuracy along each axis\n(dots: grid points, bars: 95% "
        f"intervals; does a value differ? see the comparisons figure)",
        fontsize=10,
    )
    fig.tight_layout()
    save(fig, path)


def accuracy_under_shift(evals: pd.DataFrame, summary: pd.DataFrame, path: Path | str, study: str) -> None:
    """Accuracy (left) and run-to-run std (right) under each shift vs severity, from the clean set (0); sets of
    one version (CIFAR-10.1, a dataset's own) as single points to the right, named on the axis."""
    names = [s for s in evals["shift"].unique() if s != CLEAN[0]]
    if not names:
        placeholder(path, f"{study}: no shifted evaluation sets (add `shifts` and `severities` to the study)")
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    clean_acc = clean_rows(evals)["acc"]
    clean_std = clean_rows(summary)["std_acc"].mean()
    levels = sorted(int(s) for s in evals["severity"].unique() if s > 0)
    single = [n for n in names if set(evals.loc[evals["shift"] == n, "severity"]) == {0}]
    where = {n: max(levels, default=0) + 1 + i for i, n in enumerate(single)}
    for name in names:
        rows = evals[evals["shift"] == name].groupby("severity")["acc"]
        stds = summary[summary["shift"] == name].groupby("severity")["std_acc"].mean()
        if name in where:  # one point, not a line from the clean set
            mean = 100 * np.array([rows.mean().iloc[0]])
            left.errorbar(
                [where[name]],
                mean,
                yerr=_within_percent(mean, 100 * rows.std().to_numpy()),
                marker="s",
                capsize=3,
                ls="none",
                label=name,
            )
            right.plot([where[name]], 100 * stds.to_numpy(), marker="s", ls="none", label=name)
            continue
        sev = [0, *rows.mean().index]
        mean = 100 * np.array([clean_acc.mean(), *rows.mean()])
        spread = _within_percent(mean, 100 * np.array([clean_acc.std(), *rows.std()]))
        left.errorbar(sev, mean, yerr=spread, marker="o", capsize=3, label=name)
        right.plot(sev, 100 * np.array([clean_std, *stds]), marker="o", label=name)
    clean_mean = 100 * np.array([clean_acc.mean()])
    left.errorbar(
        [0],
        clean_mean,
        yerr=_within_percent(clean_mean, [100 * clean_acc.std()]),
        marker="o",
        capsize=3,
        color="0.3",
        ls="none",
        label="clean test set",
    )
    left.axhline(clean_mean[0], color="0.5", ls=":", lw=1)
    right.plot([0], [100 * clean_std], marker="o", color="0.3", ls="none")
    right.axhline(100 * clean_std, color="0.5", ls=":", lw=1)
    left.set_ylabel("test accuracy (%, mean ± std over all runs)")
    right.set_ylabel("std over seeds (pp, mean over grid points)")
    for ax in (left, right):
        ax.set_xlabel("shift severity (0 = clean test set); sets of one version to the right")
        ax.set_xticks([0, *levels, *where.values()], ["clean", *levels, *where])
    left.legend(fontsize=8)
    fig.suptitle(f"{study}: accuracy and its run-to-run spread under distribution shift")
    fig.tight_layout()
    save(fig, path)


def training_curves(
    history: pd.DataFrame, axes: list[str], path: Path | str, study: str, most: int = 12
) -> None:
    """Training loss (log scale) and accuracy vs epoch: per grid point the mean over its converged runs,
    with the range over runs shaded; at most `most` grid points, a fixed random choice of the study's."""
    converged = history[~history["diverged"]]
    points = converged.groupby(axes, sort=True) if axes else [((), converged)]
    points = list(points)
    if not points:
        placeholder(path, f"{study}: no converged run has a training history")
        return
    # a fixed random choice: evenly spaced indices would alias with the grid's nested axes
    chosen = np.sort(np.random.default_rng(0).choice(len(points), min(most, len(points)), replace=False))
    shown = [points[i] for i in chosen]
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(13, 4))
    colours = plt.cm.viridis(np.linspace(0, 0.9, len(shown)))
    for colour, (values, rows) in zip(colours, shown):
        values = values if isinstance(values, tuple) else (values,)
        label = ", ".join(f"{a}={v}" for a, v in zip(axes, values)) or "all runs"
        by_epoch = rows.groupby("epoch")
        for ax, column, scale in ((loss_ax, "train_loss", 1), (acc_ax, "train_acc", 100)):
            mean = by_epoch[column].mean()
            ax.plot(mean.index, scale * mean, color=colour, label=label)
            ax.fill_between(
                mean.index,
                scale * by_epoch[column].min(),
                scale * by_epoch[column].max(),
                color=colour,
                alpha=0.15,
                lw=0,
            )
    loss_ax.set_yscale("log")
    loss_ax.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    loss_ax.yaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
    loss_ax.yaxis.set_minor_formatter(ticker.NullFormatter())
    loss_ax.set_ylabel("training loss (mean over the epoch's batches)")
    acc_ax.set_ylabel("training accuracy (%)")
    acc_ax.set_ylim(top=100)
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(ticker.MaxNLocator(integer=True))
    acc_ax.legend(
        fontsize=7,
        loc="upper left",
        bbox_to_anchor=(1.02, 1),
        title=None if len(shown) == len(points) else f"{len(shown)} of {len(points)} grid points",
        title_fontsize=8,
    )
    fig.suptitle(f"{study}: training curves (lines: mean over seeds; bands: min to max)")
    fig.tight_layout()
    save(fig, path)


def draw(tables: dict[str, pd.DataFrame], axes: list[str], study: str, out: Path) -> str:
    """Every study's figures (chaosgrid.plan.analyses.STUDY_FIGURES), from its evals, summary and history tables."""
    evals, summary = tables["evals"], tables["summary"]
    if not summary["n_converged"].any():
        return _placeholders(
            out,
            STUDY_FIGURES,
            f"{study}: every run diverged, so there is nothing to draw (each run's "
            f"diverged step is in tables/runs.parquet)",
        )
    accuracy_distribution(evals, axes, out / "accuracy_distribution.png", study)
    mean_std_by_axis(summary, axes, out / "mean_std_by_axis.png", study)
    accuracy_under_shift(evals, summary, out / "shifts.png", study)
    training_curves(tables["history"], axes, out / "training_curves.png", study)
    return "4 figures"
