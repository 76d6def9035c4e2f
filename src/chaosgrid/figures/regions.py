"""Figures of the decision-regions analysis (chaosgrid.analysis.regions)."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from chaosgrid.figures import _placeholders, save
from chaosgrid.plan.analyses import ANALYSES


def _comparison(agreement: pd.DataFrame) -> tuple[str | None, list[str]]:
    """The column the region figures compare (the columns of an agreement table: <compare>_a, <compare>_b) and
    the columns that split them."""
    compare = next((c.removesuffix("_a") for c in agreement.columns if c.endswith("_a")), None)
    return compare, [c for c in agreement.columns if not c.endswith(("_a", "_b")) and c != "agreement"]


def _in_order(values: pd.Series) -> list:
    """Distinct values, sorted when they are numbers (widths), else in the order they first appear."""
    distinct = list(dict.fromkeys(values))
    return sorted(distinct) if all(isinstance(v, (int, float, np.number)) for v in distinct) else distinct


def decision_regions(
    maps: pd.DataFrame, compare: str | None, by: list[str], path: Path | str, study: str
) -> None:
    """Predicted class over the first plane (colour: class): a column per value of the compared column (the
    width, or the architecture), rows for each value of the `by` columns times each of the first seeds."""
    resolution = round(len(maps.iloc[0]["pred"]) ** 0.5)
    columns = _in_order(maps[compare]) if compare else [None]
    row_groups = list(maps.groupby(by, sort=False)) if by else [((), maps)]
    keys = [c for c in (compare, *by) if c]
    seeds = max(len(g) for _, g in maps.groupby(keys)) if keys else len(maps)
    n_rows = len(row_groups) * seeds
    fig, axs = plt.subplots(
        n_rows, len(columns), figsize=(1.3 * len(columns) + 1.2, 1.3 * n_rows + 0.8), squeeze=False
    )
    classes = int(max(np.max(p) for p in maps["pred"])) + 1  # a dataset's class count, as far as predicted
    cmap = "tab10" if classes <= 10 else "tab20" if classes <= 20 else "nipy_spectral"
    image = None
    for g, (key, group) in enumerate(row_groups):
        key = key if isinstance(key, tuple) else (key,)
        for c, value in enumerate(columns):
            cell = group[group[compare] == value] if compare else group
            for s in range(seeds):
                ax = axs[g * seeds + s, c]
                ax.set_xticks([])
                ax.set_yticks([])
                if s < len(cell):
                    grid = np.asarray(cell.iloc[s]["pred"]).reshape(resolution, resolution)
                    image = ax.imshow(
                        grid,
                        cmap=cmap,
                        vmin=-0.5,
                        vmax=max(classes, 10) - 0.5,
                        origin="lower",
                        interpolation="nearest",
                    )
                if c == 0:
                    label = "".join(f"{a} {v}\n" for a, v in zip(by, key))
                    ax.set_ylabel(f"{label}seed {s + 1}", fontsize=7)
        for c, value in enumerate(columns):
            axs[0, c].set_title(str(value) if compare else "all runs", fontsize=7)
    if image is not None:
        fig.colorbar(
            image,
            ax=axs,
            ticks=range(max(classes, 10)) if classes <= 20 else None,
            label="predicted class",
            shrink=0.6,
        )
    by_column = f"columns: {compare}; " if compare else ""
    fig.suptitle(
        f"{study}: decision regions on the first plane (the same three images for every run)\n"
        f"{by_column}colour: predicted class",
        fontsize=10,
    )
    save(fig, path)


def double_descent(regions: pd.DataFrame, compare: str, by: list[str], path: Path | str, study: str) -> None:
    """Test error, fragmentation and reproducibility vs the compared column (the width), a line per `by` value."""
    fig, axs = plt.subplots(1, 3, figsize=(12, 3.6))
    connectivity = int(regions["connectivity"].iloc[0])
    panels = (
        ("test_error", "clean test error (%)", 100),
        ("fragmentation", f"class regions per plane ({connectivity}-connected)", 1),
        ("reproducibility", "points where two seeds agree (%)\n(dotted: one fixed pair)", 100),
    )
    lines = list(regions.groupby(by, sort=True)) if by else [((), regions)]
    numeric = all(isinstance(v, (int, float, np.number)) for v in regions[compare])
    for key, rows in lines:
        rows = (
            rows.set_index(compare)
            .reindex(_in_order(regions[compare]))
            .dropna(subset=["test_error"])
            .reset_index()
        )
        label = ", ".join(f"{a} {v}" for a, v in zip(by, key if isinstance(key, tuple) else (key,))) or None
        for ax, (column, ylabel, scale) in zip(axs, panels):
            line = ax.plot(rows[compare], scale * rows[column], "-o" if numeric else "o", label=label)[0]
            if column == "reproducibility":  # the paper's one fixed pair of seeds, beside the mean over pairs
                ax.plot(rows[compare], scale * rows["reproducibility_pair"], ":", color=line.get_color())
            ax.set_ylabel(ylabel)
            ax.set_xlabel(compare)
            if compare == "width":
                ax.set_xscale("log", base=2)
                ax.set_xticks(
                    sorted(regions[compare].unique()), [str(v) for v in sorted(regions[compare].unique())]
                )
                ax.minorticks_off()
            elif not numeric:
                ax.tick_params(axis="x", labelrotation=30)
    if by:
        axs[0].legend(fontsize=8)
    fig.suptitle(f"{study}: error, fragmentation and reproducibility of decision regions vs {compare}")
    fig.tight_layout()
    save(fig, path)


def region_agreement(table: pd.DataFrame, compare: str, by: list[str], path: Path | str, study: str) -> None:
    """Heatmaps of the agreement between runs of two grid points along the compared column (diagonal: within
    one point, its reproducibility), one per value of the `by` columns."""
    panels = list(table.groupby(by, sort=False)) if by else [((), table)]
    values = _in_order(table[f"{compare}_a"])
    size = 0.55 * len(values) + 0.8
    fig, axs = plt.subplots(
        1, len(panels), figsize=(size * len(panels) + 2.5, size + 1.2), squeeze=False, layout="constrained"
    )
    for ax, (key, rows) in zip(axs[0], panels, strict=True):
        # a pair of values that never meet under these `by` values (a variant each) stays blank
        pivot = rows.pivot(index=f"{compare}_a", columns=f"{compare}_b", values="agreement")
        matrix = 100 * pivot.reindex(index=values, columns=values).to_numpy(dtype=float)
        image = ax.imshow(np.ma.masked_invalid(matrix), cmap="viridis", vmin=0, vmax=100)
        for (i, j), v in np.ndenumerate(matrix):
            if np.isfinite(v):
                ax.text(
                    j,
                    i,
                    f"{v:.0f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if v < 60 else "black",
                )
        ax.set_xticks(range(len(values)), [str(v) for v in values], rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(values)), [str(v) for v in values] if ax is axs[0, 0] else [], fontsize=8)
        key = key if isinstance(key, tuple) else (key,)
        ax.set_title(", ".join(f"{a} {v}" for a, v in zip(by, key)) or "all runs", fontsize=9)
    fig.colorbar(image, ax=axs, label="plane points where two runs agree (%)", shrink=0.8)
    fig.suptitle(
        f"{study}: agreement of decision regions between runs, by {compare} (diagonal: distinct seeds)"
    )
    save(fig, path)


def region_bars(regions: pd.DataFrame, compare: str, by: list[str], path: Path | str, study: str) -> None:
    """Bars per value of the compared column, one colour per value of the `by` columns: reproducibility
    (mean over seed pairs) and clean test accuracy."""
    groups = list(regions.groupby(by, sort=False)) if by else [((), regions)]
    values = _in_order(regions[compare])
    fig, axs = plt.subplots(1, 2, figsize=(max(9.0, 1.6 * len(values)), 3.8))
    width = 0.8 / len(groups)
    for g, (key, rows) in enumerate(groups):
        rows = rows.set_index(compare).reindex(values)
        key = key if isinstance(key, tuple) else (key,)
        label = ", ".join(f"{a} {v}" for a, v in zip(by, key)) or None
        x = np.arange(len(values)) + (g - (len(groups) - 1) / 2) * width
        axs[0].bar(x, 100 * rows["reproducibility"], width, label=label)
        axs[1].bar(x, 100 * (1 - rows["test_error"]), width, label=label)
    shown = (100 * regions["reproducibility"], 100 * (1 - regions["test_error"]))
    for ax, ylabel, values_shown in zip(
        axs, ("plane points where two seeds agree (%)", "clean test accuracy (%)"), shown, strict=True
    ):
        ax.set_xticks(range(len(values)), [str(v) for v in values], rotation=30, ha="right")
        ax.set_ylabel(ylabel)
        ax.set_ylim(max(0.0, float(values_shown.min()) - 5), min(100.0, float(values_shown.max()) + 2))
        ax.grid(alpha=0.3, axis="y")
    if by:
        axs[0].legend(fontsize=8)
    fig.suptitle(f"{study}: reproducibility of decision regions and accuracy per {compare}")
    fig.tight_layout()
    save(fig, path)


def draw(tables: dict[str, pd.DataFrame], axes: list[str], study: str, out: Path) -> str:
    """The decision-region figures of a study (needs the `planes` probe set), from its region tables; the
    compared column and its splits are those of the agreement table."""
    names = ANALYSES["regions"].figures
    if tables["regions"].empty:
        return _placeholders(out, names, f"{study}: no converged run has predictions on the planes")
    compare, by = _comparison(tables["region_agreement"])
    decision_regions(tables["region_maps"], compare, by, out / "decision_regions.png", study)
    if compare is None:
        return "1 figure and " + _placeholders(out, names[1:], f"{study}: no axis to draw against")
    double_descent(tables["regions"], compare, by, out / "double_descent.png", study)
    region_agreement(tables["region_agreement"], compare, by, out / "region_agreement.png", study)
    region_bars(tables["regions"], compare, by, out / "region_bars.png", study)
    return "4 figures"
