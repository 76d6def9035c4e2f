"""Figures of a study's tables (matplotlib, Agg): what a reader checks first about a grid of runs.

Each function takes the tidy `evals` frame (one row per run x evaluation set) or the `summary` frame
(one row per grid point x evaluation set) and writes one PNG atomically.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from chaosgrid.aggregate import rows_at
from chaosgrid.store import write_atomically
from chaosgrid.studies import CLEAN, clean_rows


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


def _panels(n: int, rows: int = 1, size: tuple[float, float] = (3.4, 3.0)):
    """A rows x n grid of panels sharing the y axis within each row."""
    n = max(n, 1)
    return plt.subplots(rows, n, figsize=(size[0] * n, size[1] * rows), squeeze=False, sharey="row")


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
    points = clean_rows(summary)
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
    names = [s for s in evals["shift"].unique() if s != CLEAN[0]]
    if not names:
        placeholder(path, f"{study}: no shifted evaluation sets (add `shifts` and `severities` to the study)")
        return
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    clean_acc = clean_rows(evals)["acc"]
    clean_std = clean_rows(summary)["std_acc"].mean()
    for name in names:
        rows = evals[evals["shift"] == name].groupby("severity")["acc"]
        sev = [0, *rows.mean().index]
        mean = 100 * np.array([clean_acc.mean(), *rows.mean()])
        spread = _within_percent(mean, 100 * np.array([clean_acc.std(), *rows.std()]))
        left.errorbar(sev, mean, yerr=spread, marker="o", capsize=3, label=name)
        stds = summary[summary["shift"] == name].groupby("severity")["std_acc"].mean()
        right.plot(sev, 100 * np.array([clean_std, *stds]), marker="o", label=name)
    left.set_ylabel("test accuracy (%, mean ± std over all runs)")
    right.set_ylabel("std over seeds (pp, mean over grid points)")
    severities = sorted({0, *evals["severity"].unique()})
    for ax in (left, right):
        ax.set_xlabel("shift severity (0 = clean test set)")
        ax.set_xticks(severities)
    left.legend(fontsize=8)
    fig.suptitle(f"{study}: accuracy and its run-to-run spread under distribution shift")
    fig.tight_layout()
    save(fig, path)


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


def _comparison(agreement: pd.DataFrame) -> tuple[str | None, list[str]]:
    """The column the region figures compare (the columns of an agreement table: <compare>_a, <compare>_b) and
    the columns that split them."""
    compare = next((c.removesuffix("_a") for c in agreement.columns if c.endswith("_a")), None)
    return compare, [c for c in agreement.columns if not c.endswith(("_a", "_b")) and c != "agreement"]


def _in_order(values: pd.Series) -> list:
    """Distinct values, sorted when they are numbers (widths), else in the order they first appear."""
    distinct = list(dict.fromkeys(values))
    return sorted(distinct) if all(isinstance(v, (int, float, np.number)) for v in distinct) else distinct


def decision_regions(maps: pd.DataFrame, compare: str | None, by: list[str], path: Path | str, study: str) -> None:
    """Predicted class over the first plane (colour: class): a column per value of the compared column (the
    width, or the architecture), rows for each value of the `by` columns times each of the first seeds."""
    resolution = round(len(maps.iloc[0]["pred"]) ** 0.5)
    columns = _in_order(maps[compare]) if compare else [None]
    row_groups = list(maps.groupby(by, sort=False)) if by else [((), maps)]
    keys = [c for c in (compare, *by) if c]
    seeds = max(len(g) for _, g in maps.groupby(keys)) if keys else len(maps)
    n_rows = len(row_groups) * seeds
    fig, axs = plt.subplots(n_rows, len(columns), figsize=(1.3 * len(columns) + 1.2, 1.3 * n_rows + 0.8),
                            squeeze=False)  # fmt: skip
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
                    image = ax.imshow(grid, cmap="tab10", vmin=-0.5, vmax=9.5, origin="lower", interpolation="nearest")
                if c == 0:
                    label = "".join(f"{a} {v}\n" for a, v in zip(by, key))
                    ax.set_ylabel(f"{label}seed {s + 1}", fontsize=7)
        for c, value in enumerate(columns):
            axs[0, c].set_title(str(value) if compare else "all runs", fontsize=7)
    if image is not None:
        fig.colorbar(image, ax=axs, ticks=range(10), label="predicted class", shrink=0.6)
    by_column = f"columns: {compare}; " if compare else ""
    fig.suptitle(f"{study}: decision regions on the first plane (the same three images for every run)\n"
                 f"{by_column}colour: predicted class", fontsize=10)  # fmt: skip
    save(fig, path)


def double_descent(regions: pd.DataFrame, compare: str, by: list[str], path: Path | str, study: str) -> None:
    """Test error, fragmentation and reproducibility vs the compared column (the width), a line per `by` value."""
    fig, axs = plt.subplots(1, 3, figsize=(12, 3.6))
    connectivity = int(regions["connectivity"].iloc[0])
    panels = (("test_error", "clean test error (%)", 100),
              ("fragmentation", f"class regions per plane ({connectivity}-connected)", 1),
              ("reproducibility", "points where two seeds agree (%)\n(dotted: one fixed pair)", 100))  # fmt: skip
    lines = list(regions.groupby(by, sort=True)) if by else [((), regions)]
    numeric = all(isinstance(v, (int, float, np.number)) for v in regions[compare])
    for key, rows in lines:
        rows = rows.set_index(compare).reindex(_in_order(regions[compare])).dropna(subset=["test_error"]).reset_index()
        label = ", ".join(f"{a} {v}" for a, v in zip(by, key if isinstance(key, tuple) else (key,))) or None
        for ax, (column, ylabel, scale) in zip(axs, panels):
            line = ax.plot(rows[compare], scale * rows[column], "-o" if numeric else "o", label=label)[0]
            if column == "reproducibility":  # the paper's one fixed pair of seeds, beside the mean over pairs
                ax.plot(rows[compare], scale * rows["reproducibility_pair"], ":", color=line.get_color())
            ax.set_ylabel(ylabel)
            ax.set_xlabel(compare)
            if compare == "width":
                ax.set_xscale("log", base=2)
                ax.set_xticks(sorted(regions[compare].unique()), [str(v) for v in sorted(regions[compare].unique())])
                ax.minorticks_off()
            elif not numeric:
                ax.tick_params(axis="x", labelrotation=30)
    if by:
        axs[0].legend(fontsize=8)
    fig.suptitle(f"{study}: error, fragmentation and reproducibility of decision regions vs {compare}")
    fig.tight_layout()
    save(fig, path)


def training_curves(history: pd.DataFrame, axes: list[str], path: Path | str, study: str,
                    most: int = 12) -> None:  # fmt: skip
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
            ax.fill_between(mean.index, scale * by_epoch[column].min(), scale * by_epoch[column].max(),
                            color=colour, alpha=0.15, lw=0)  # fmt: skip
    loss_ax.set_yscale("log")
    loss_ax.yaxis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    loss_ax.yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    loss_ax.yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    loss_ax.set_ylabel("training loss (mean over the epoch's batches)")
    acc_ax.set_ylabel("training accuracy (%)")
    acc_ax.set_ylim(top=100)
    for ax in (loss_ax, acc_ax):
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    acc_ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), title=None if len(shown) == len(points)
                  else f"{len(shown)} of {len(points)} grid points", title_fontsize=8)  # fmt: skip
    fig.suptitle(f"{study}: training curves (lines: mean over seeds; bands: min to max)")
    fig.tight_layout()
    save(fig, path)


def _placeholders(out: Path, names: tuple[str, ...], message: str) -> str:
    for name in names:
        placeholder(out / f"{name}.png", message)
    return f"{len(names)} placeholder figures ({message})"


def variance_figures(tables: dict[str, pd.DataFrame], axes: list[str], study: str, out: Path) -> str:
    """The run-to-run variance figures of a study, from its variance tables."""
    if tables["variance"].empty:
        names = ("variance_by_axis", "independence", "churn", "variance_vs_shift")
        return _placeholders(out, names, f"{study}: no grid point has 3 or more converged runs")
    variance_by_axis(tables["variance"], axes, out / "variance_by_axis.png", study)
    independence(tables["independence"], axes, out / "independence.png", study)
    churn(tables["churn"], axes, out / "churn.png", study)
    variance_vs_shift(tables["variance"], out / "variance_vs_shift.png", study)
    return "4 figures"


def region_agreement(table: pd.DataFrame, compare: str, by: list[str], path: Path | str, study: str) -> None:
    """Heatmaps of the agreement between runs of two grid points along the compared column (diagonal: within
    one point, its reproducibility), one per value of the `by` columns."""
    panels = list(table.groupby(by, sort=False)) if by else [((), table)]
    values = _in_order(table[f"{compare}_a"])
    size = 0.55 * len(values) + 0.8
    fig, axs = plt.subplots(1, len(panels), figsize=(size * len(panels) + 2.5, size + 1.2), squeeze=False,
                            layout="constrained")  # fmt: skip
    for ax, (key, rows) in zip(axs[0], panels, strict=True):
        matrix = 100 * rows.pivot(index=f"{compare}_a", columns=f"{compare}_b", values="agreement").loc[values, values]
        image = ax.imshow(matrix.to_numpy(), cmap="viridis", vmin=0, vmax=100)
        for (i, j), v in np.ndenumerate(matrix.to_numpy()):
            ax.text(j, i, f"{v:.0f}", ha="center", va="center", fontsize=7, color="white" if v < 60 else "black")
        ax.set_xticks(range(len(values)), [str(v) for v in values], rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(values)), [str(v) for v in values] if ax is axs[0, 0] else [], fontsize=8)
        key = key if isinstance(key, tuple) else (key,)
        ax.set_title(", ".join(f"{a} {v}" for a, v in zip(by, key)) or "all runs", fontsize=9)
    fig.colorbar(image, ax=axs, label="plane points where two runs agree (%)", shrink=0.8)
    fig.suptitle(f"{study}: agreement of decision regions between runs, by {compare} (diagonal: distinct seeds)")
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
    for ax, ylabel, values_shown in zip(axs, ("plane points where two seeds agree (%)", "clean test accuracy (%)"),
                                        shown, strict=True):  # fmt: skip
        ax.set_xticks(range(len(values)), [str(v) for v in values], rotation=30, ha="right")
        ax.set_ylabel(ylabel)
        ax.set_ylim(max(0.0, float(values_shown.min()) - 5), min(100.0, float(values_shown.max()) + 2))
        ax.grid(alpha=0.3, axis="y")
    if by:
        axs[0].legend(fontsize=8)
    fig.suptitle(f"{study}: reproducibility of decision regions and accuracy per {compare}")
    fig.tight_layout()
    save(fig, path)


def region_figures(tables: dict[str, pd.DataFrame], axes: list[str], study: str, out: Path) -> str:
    """The decision-region figures of a study (needs the `planes` probe set), from its region tables; the
    compared column and its splits are those of the agreement table."""
    names = ("decision_regions", "double_descent", "region_agreement", "region_bars")
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


def _row_labels(table: pd.DataFrame, axes: list[str]) -> list[str]:
    """A full-batch table's rows by name: the variant, then any other axis values."""
    others = [a for a in axes if a != "variant"]
    return [", ".join([r["variant"], *(f"{a}={r[a]}" for a in others)]) for _, r in table.iterrows()]


def full_batch_table(table: pd.DataFrame, axes: list[str], path: Path | str, study: str) -> None:
    """The study's table as the paper prints it: each row's recipe and test accuracy, mean ± std over seeds,
    beside the binomial std (test-set sampling) and the distribution-wise std."""
    import textwrap

    header = ["row", "batching", "data", "steps", "modifications vs the first row", "runs",
              "test acc. (%)", "binom. std", "distr. std", "clipped", "s / run"]  # fmt: skip
    cells = [[name, textwrap.fill(r["batching"], 26), r["data"], f"{r['steps']:,}",
              textwrap.fill(r["modifications"], 40), f"{r['n_runs'] - r['n_diverged']}/{r['n_runs']}",
              f"{100 * r['mean_acc']:.2f} ± {100 * r['std_acc']:.2f}", f"{100 * r['std_binomial']:.2f}",
              f"{100 * r['std_distribution']:.2f}", f"{100 * r['clipped']:.0f}%", f"{r['seconds_per_run']:.1f}"]
             for name, (_, r) in zip(_row_labels(table, axes), table.iterrows())]  # fmt: skip
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
    ax.set_title(f"{study}: test accuracy per recipe (std over seeds; binomial: its test-set sampling part; "
                 f"distribution-wise: its part from real differences between runs)", fontsize=10)  # fmt: skip
    save(fig, path)


def full_batch_accuracy(table: pd.DataFrame, axes: list[str], path: Path | str, study: str) -> None:
    """Each row's test accuracy: mean ± std over seeds (black), and ± the binomial std alone (grey), the part
    of the spread that test-set sampling explains."""
    labels = _row_labels(table, axes)
    y = np.arange(len(table))[::-1]
    fig, ax = plt.subplots(figsize=(7.5, 0.9 + 0.32 * len(table)))
    mean = 100 * table["mean_acc"]
    ax.errorbar(mean, y + 0.15, xerr=100 * table["std_binomial"], fmt="none", ecolor="0.6", lw=3,
                label="± binomial std (test-set sampling)")  # fmt: skip
    ax.errorbar(mean, y - 0.15, xerr=100 * table["std_acc"], fmt="o", color="black", ms=4, capsize=3,
                label="mean ± std over seeds")  # fmt: skip
    ax.set_yticks(y, labels)
    ax.set_xlabel("clean test accuracy (%)")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(f"{study}: test accuracy per recipe ({int(table['n_runs'].min())}+ seeds each)", fontsize=10)
    save(fig, path)


def full_batch_curves(curves: pd.DataFrame, history: pd.DataFrame, table: pd.DataFrame, axes: list[str],
                      path: Path | str, study: str) -> None:  # fmt: skip
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
    plain = matplotlib.ticker.FormatStrFormatter("%g")
    for ax in (loss_ax, acc_ax):
        ax.set_xscale("log")
        ax.set_xlabel("optimizer step (log)")
        ax.grid(alpha=0.3)
        for axis in (ax.xaxis, *((ax.yaxis,) if ax is loss_ax else ())):
            axis.set_major_locator(matplotlib.ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
            axis.set_major_formatter(plain)
            axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
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


def full_batch_figures(tables: dict[str, pd.DataFrame], axes: list[str], study: str, out: Path) -> str:
    """The full-batch study's figures, from its table, its checkpoint curves and the study's history."""
    names = ("full_batch_table", "full_batch_accuracy", "full_batch_curves", "full_batch_clipped")
    table = tables["full_batch"]
    if table.empty:
        return _placeholders(out, names, f"{study}: no variant has a converged run")
    full_batch_table(table, axes, out / "full_batch_table.png", study)
    full_batch_accuracy(table, axes, out / "full_batch_accuracy.png", study)
    full_batch_curves(tables["full_batch_curves"], tables["history"], table, axes, out / "full_batch_curves.png", study)
    full_batch_clipped(table, axes, out / "full_batch_clipped.png", study)
    return "4 figures"


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
        axis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    runs_ax.set_xticks(DELTAS)
    runs_ax.set_xlabel("difference to detect (points)")
    runs_ax.set_ylabel("runs per arm for 80% power at 5%")
    runs_ax.grid(alpha=0.3, which="both")
    runs_ax.legend(fontsize=8)
    runs_ax.set_title("seeds needed (from each pair's pooled std)", fontsize=9)
    fig.suptitle(f"{study}: are neighbouring grid points different?")
    fig.tight_layout()
    save(fig, path)


def comparison_figures(tables: dict[str, pd.DataFrame], axes: list[str], study: str, out: Path) -> str:
    """The comparison figure of a study, from its comparisons table."""
    if tables["comparisons"].empty:
        return _placeholders(out, ("comparisons",), f"{study}: no two neighbouring grid points with 2+ runs each")
    comparisons(tables["comparisons"], out / "comparisons.png", study)
    return "1 figure"


METHOD_STYLE = {"single": ("single model", "0.3"), "ind": ("Ind", "tab:blue"), "nocycle": ("NoCycle", "tab:gray"),
                "sse": ("SSE", "tab:orange"), "fge": ("FGE", "tab:green"),
                "single_cycle": ("SingleCycle", "tab:purple")}  # fmt: skip
CURVE_STYLE = {"line": "tab:red", "chain": "tab:blue", "bezier": "tab:green"}


def ensemble_error(table: pd.DataFrame, path: Path | str, study: str) -> None:
    """Left: ensemble test error vs budget per method (mean and std over repetitions; the single model as a
    band). Right: each repetition's error minus its own Ind runs' single-model error, mean and 95% t interval."""
    fig, (error_ax, diff_ax) = plt.subplots(1, 2, figsize=(10, 4))
    single = table[table["method"] == "single"].iloc[0]
    error_ax.axhspan(100 * (single["error"] - single["error_std"]), 100 * (single["error"] + single["error_std"]),
                     color="0.85", label=f"single model ({single['repetitions']} runs, mean +- std)")  # fmt: skip
    error_ax.axhline(100 * single["error"], color="0.3", lw=1)
    methods = [m for m in METHOD_STYLE if m != "single" and m in set(table["method"])]
    for j, method in enumerate(methods):
        rows = table[table["method"] == method]
        label, colour = METHOD_STYLE[method]
        offset = (j - (len(methods) - 1) / 2) * 0.06
        error_ax.errorbar(rows["budget"] + offset, 100 * rows["error"], 100 * rows["error_std"].fillna(0), fmt="o-",
                          color=colour, capsize=3, label=label)  # fmt: skip
        interval = [100 * (rows["diff_vs_single"] - rows["diff_lo"]).fillna(0),
                    100 * (rows["diff_hi"] - rows["diff_vs_single"]).fillna(0)]  # fmt: skip
        diff_ax.errorbar(rows["budget"] + offset, 100 * rows["diff_vs_single"], interval, fmt="o", color=colour,
                         capsize=3, label=label)  # fmt: skip
    diff_ax.axhline(0, color="0.3", lw=1)
    for ax in (error_ax, diff_ax):
        ax.set_xticks(list(table["budget"].unique()), [f"{b}B" for b in table["budget"].unique()])
        ax.set_xlabel("training budget (B: one run's epochs)")
        ax.grid(alpha=0.3)
    error_ax.set_ylabel("ensemble test error (%)")
    error_ax.legend(fontsize=7)
    error_ax.set_title("error at equal budget", fontsize=9)
    diff_ax.set_ylabel("error - same seeds' single-model error (points)")
    diff_ax.set_title("paired difference, 95% t interval over repetitions", fontsize=9)
    fig.suptitle(f"{study}: ensembles at equal training budget")
    fig.tight_layout()
    save(fig, path)


def ensemble_diversity(table: pd.DataFrame, path: Path | str, study: str) -> None:
    """Bars: how often two members of an ensemble disagree on the test set, and how far apart their weights are."""
    fig, (dis_ax, dist_ax) = plt.subplots(1, 2, figsize=(9, 3.6))
    labels = [METHOD_STYLE[m][0] for m in table["method"]]
    colours = [METHOD_STYLE[m][1] for m in table["method"]]
    x = np.arange(len(table))
    dis_ax.bar(x, 100 * table["disagreement"], yerr=100 * table["disagreement_std"].fillna(0), color=colours,
               capsize=3)  # fmt: skip
    dis_ax.set_ylabel("test predictions that differ (%)")
    dis_ax.set_title("disagreement between members (mean +- std over pairs)", fontsize=8)
    dist_ax.bar(x, table["relative_distance"], color=colours)
    dist_ax.set_yscale("log")
    dist_ax.set_ylabel("L2 distance / mean weight norm")
    dist_ax.set_title("distance in weight space (trainable parameters)", fontsize=8)
    for ax in (dis_ax, dist_ax):
        ax.set_xticks(x, [f"{label}\n{n} pairs" for label, n in zip(labels, table["pairs"], strict=True)], fontsize=7)
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{study}: how different are the members?")
    fig.tight_layout()
    save(fig, path)


def curves(table: pd.DataFrame, path: Path | str, study: str) -> None:
    """Along t for each kind of curve (mean over pairs, band: min to max): train loss (NLL solid, with the L2
    term dashed), test error, and the test error of the two-member ensemble {w1, phi(t)}."""
    fig, axes_ = plt.subplots(1, 3, figsize=(12, 3.6))
    panels = (("train_nll", "train loss"), ("test_err", "test error (%)"), ("ensemble_err", "error of {w1, phi(t)} (%)"))
    for kind, rows in table.groupby("curve", sort=False):
        by_t = rows.groupby("t")
        colour = CURVE_STYLE[kind]
        for ax, (column, label) in zip(axes_, panels, strict=True):
            scale = 1 if column == "train_nll" else 100
            values = by_t[column]
            ax.plot(values.mean().index, scale * values.mean(), color=colour, label=kind)
            ax.fill_between(values.mean().index, scale * values.min(), scale * values.max(), color=colour, alpha=0.15)
            ax.set_ylabel(label)
        axes_[0].plot(by_t["train_loss"].mean().index, by_t["train_loss"].mean(), color=colour, ls="--", lw=1)
    for ax in axes_:
        ax.set_xlabel("t (0: run A, 1: run B)")
        ax.grid(alpha=0.3)
    axes_[0].set_yscale("log")
    axes_[0].legend(fontsize=7, title=f"{table['pair'].nunique()} pairs; dashed: + L2", title_fontsize=7)
    fig.suptitle(f"{study}: paths between independently trained runs (BatchNorm recomputed at every t)")
    fig.tight_layout()
    save(fig, path)


def ensemble_figures(tables: dict[str, pd.DataFrame], axes: list[str], study: str, out: Path) -> str:
    """The ensembles study's figures: error vs budget, member diversity, and the curves between runs."""
    done = []
    if tables["ensembles"].empty:
        placeholder(out / "ensemble_error.png", f"{study}: no converged runs to ensemble")
        placeholder(out / "ensemble_diversity.png", f"{study}: no converged runs to ensemble")
    else:
        ensemble_error(tables["ensembles"], out / "ensemble_error.png", study)
        ensemble_diversity(tables["diversity"], out / "ensemble_diversity.png", study)
        done += ["ensemble_error", "ensemble_diversity"]
    if tables["curves"].empty:
        placeholder(out / "curves.png", f"{study}: no curves declared (a `curves` block joins pairs of runs)")
    else:
        curves(tables["curves"], out / "curves.png", study)
        done.append("curves")
    return f"{len(done)} figures"
