"""Figures of the full-batch analysis (chaosgrid.analysis.full_batch)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import ticker

from chaosgrid.aggregate import rows_at
from chaosgrid.figures import _placeholders, save
from chaosgrid.plan.analyses import ANALYSES


def _row_labels(table: pd.DataFrame, axes: list[str]) -> list[str]:
    """A full-batch table's rows by name: the variant, then any other axis values."""
    others = [a for a in axes if a != "variant"]
    return [", ".join([r["variant"], *(f"{a}={r[a]}" for a in others)]) for _, r in table.iterrows()]


def full_batch_table(table: pd.DataFrame, axes: list[str], path: Path | str, study: str) -> None:
    """The study's table as the paper prints it: each row's recipe and test accuracy, mean ± std over seeds,
    beside the per-example coin-flip (binomial) std and the distribution-wise std."""
    import textwrap

    header = [
        "row",
        "batching",
        "data",
        "steps",
        "modifications vs the first row",
        "runs",
        "test acc. (%)",
        "binom. std",
        "distr. std",
        "clipped",
        "s / run",
    ]
    cells = [
        [
            name,
            textwrap.fill(r["batching"], 26),
            r["data"],
            f"{r['steps']:,}",
            textwrap.fill(r["modifications"], 40),
            f"{r['n_runs'] - r['n_diverged']}/{r['n_runs']}",
            f"{100 * r['mean_acc']:.2f} ± {100 * r['std_acc']:.2f}",
            f"{100 * r['std_binomial']:.2f}",
            f"{100 * r['std_distribution']:.2f}",
            f"{100 * r['clipped']:.0f}%",
            f"{r['seconds_per_run']:.1f}",
        ]
        for name, (_, r) in zip(_row_labels(table, axes), table.iterrows())
    ]
    lines = [max(c.count("\n") + 1 for c in row) for row in cells]
    fig, ax = plt.subplots(figsize=(17, 0.5 + 0.28 * (sum(lines) + 2)))
    ax.axis("off")
    drawn = ax.table(cellText=cells, colLabels=header, loc="upper center", cellLoc="left", colLoc="left")
    drawn.auto_set_font_size(False)
    drawn.set_fontsize(8)
    drawn.auto_set_column_width(list(range(len(header))))
    for (row, _), cell in drawn.get_celld().items():
        cell.set_height(0.9 / (sum(lines) + 1) * (lines[row - 1] if row else 1))
        cell.set_edgecolor("0.85")
        if row == 0:
            cell.set_text_props(weight="bold")
    ax.set_title(
        f"{study}: test accuracy per recipe (std over seeds; grey: its per-example coin-flip part; "
        f"distribution-wise: its part from real differences between runs)",
        fontsize=10,
    )
    save(fig, path)


def full_batch_accuracy(table: pd.DataFrame, axes: list[str], path: Path | str, study: str) -> None:
    """Each row's test accuracy: mean ± std over seeds (black), and ± the binomial std alone (grey), the part
    of the spread that per-example coin flips explain."""
    labels = _row_labels(table, axes)
    y = np.arange(len(table))[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.32 * len(table)))
    mean = 100 * table["mean_acc"]
    ax.errorbar(
        mean,
        y + 0.15,
        xerr=100 * table["std_binomial"],
        fmt="none",
        ecolor="0.6",
        lw=3,
        label="± per-example coin-flip (binomial) std",
    )
    ax.errorbar(
        mean,
        y - 0.15,
        xerr=100 * table["std_acc"],
        fmt="o",
        color="black",
        ms=4,
        capsize=3,
        label="mean ± std over seeds",
    )
    ax.set_yticks(y, labels)
    ax.set_xlabel("clean test accuracy (%)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"{study}: test accuracy per recipe ({int(table['n_runs'].min())}+ seeds each)", fontsize=10)
    save(fig, path)


def full_batch_curves(
    curves: pd.DataFrame,
    history: pd.DataFrame,
    table: pd.DataFrame,
    axes: list[str],
    path: Path | str,
    study: str,
) -> None:
    """Training loss (log) and test accuracy vs optimizer step per row: SGD rows dashed, full-batch solid;
    lines are means over converged seeds."""
    fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(14, 4.8))
    distinct = [plt.cm.tab20(i) for i in [*range(0, 20, 2), *range(1, 20, 2)]]  # ten hues, then their tints
    colours = distinct[: len(table)] if len(table) <= 20 else plt.cm.viridis(np.linspace(0, 0.95, len(table)))
    converged = history[~history["diverged"]]
    for colour, label, (_, row) in zip(colours, _row_labels(table, axes), table.iterrows()):
        point = {a: row[a] for a in axes}
        style = "--" if row["batching"].startswith("SGD") else "-"
        loss = rows_at(converged, point).groupby("step")["train_loss"].mean()
        loss_ax.plot(loss.index, loss, style, color=colour, label=label, lw=1.3)
        acc = rows_at(curves, point)
        acc_ax.plot(acc["step"], 100 * acc["mean_acc"], style, color=colour, marker=".", ms=4, lw=1.3)
    loss_ax.set_yscale("log")
    loss_ax.set_ylabel("training loss (mean over each epoch's steps)")
    acc_ax.set_ylabel("clean test accuracy (%) at checkpoints")
    plain = ticker.FormatStrFormatter("%g")
    for ax in (loss_ax, acc_ax):
        ax.set_xscale("log")
        ax.set_xlabel("optimizer step (log)")
        ax.grid(alpha=0.3)
        for axis in (ax.xaxis, *((ax.yaxis,) if ax is loss_ax else ())):
            axis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(ticker.NullFormatter())
    handles, labels = loss_ax.get_legend_handles_labels()
    acc_ax.legend(handles, labels, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    fig.suptitle(f"{study}: training loss and test accuracy vs step (dashed: SGD; solid: full batch)")
    fig.tight_layout()
    save(fig, path)


def full_batch_clipped(table: pd.DataFrame, axes: list[str], path: Path | str, study: str) -> None:
    """The fraction of steps whose gradient was clipped, per row (0 where the row does not clip)."""
    y = np.arange(len(table))[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.9 + 0.3 * len(table)))
    ax.barh(y, 100 * table["clipped"], color="tab:orange")
    for yi, value in zip(y, table["clipped"]):
        ax.text(100 * value + 1, yi, f"{100 * value:.0f}%", va="center", fontsize=8)
    ax.set_yticks(y, _row_labels(table, axes))
    ax.set_xlim(0, 110)
    ax.set_xlabel("steps clipped (% of all steps, mean over seeds)")
    ax.set_title(f"{study}: how often the gradient clip binds", fontsize=10)
    save(fig, path)


def draw(tables: dict[str, pd.DataFrame], axes: list[str], study: str, out: Path) -> str:
    """The full-batch study's figures, from its table, its checkpoint curves and the study's history."""
    names = ANALYSES["full_batch"].figures
    table = tables["full_batch"]
    if table.empty:
        return _placeholders(out, names, f"{study}: no variant has a converged run")
    full_batch_table(table, axes, out / "full_batch_table.png", study)
    full_batch_accuracy(table, axes, out / "full_batch_accuracy.png", study)
    full_batch_curves(
        tables["full_batch_curves"], tables["history"], table, axes, out / "full_batch_curves.png", study
    )
    full_batch_clipped(table, axes, out / "full_batch_clipped.png", study)
    return "4 figures"
