"""Figures of the ensembles analysis (chaosgrid.analysis.ensembles): error vs budget, diversity, curves."""

from __future__ import annotations

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from chaosgrid.figures import placeholder, save

METHOD_STYLE = {
    "single": ("single model", "0.3"),
    "ind": ("Ind", "tab:blue"),
    "nocycle": ("NoCycle", "tab:gray"),
    "sse": ("SSE", "tab:orange"),
    "fge": ("FGE", "tab:green"),
    "single_cycle": ("SingleCycle", "tab:purple"),
}


CURVE_STYLE = {"line": "tab:red", "chain": "tab:blue", "bezier": "tab:green"}


def ensemble_error(table: pd.DataFrame, path: Path | str, study: str) -> None:
    """Left: ensemble test error vs budget per method (mean and std over repetitions; the single model as a
    band). Right: each repetition's error minus its own Ind runs' single-model error, mean and 95% t interval."""
    fig, (error_ax, diff_ax) = plt.subplots(1, 2, figsize=(10, 4))
    single = table[table["method"] == "single"].iloc[0]
    error_ax.axhspan(
        100 * (single["error"] - single["error_std"]),
        100 * (single["error"] + single["error_std"]),
        color="0.85",
        label=f"single model ({single['repetitions']} runs, mean +- std)",
    )
    error_ax.axhline(100 * single["error"], color="0.3", lw=1)
    methods = [m for m in METHOD_STYLE if m != "single" and m in set(table["method"])]
    for j, method in enumerate(methods):
        rows = table[table["method"] == method]
        label, colour = METHOD_STYLE[method]
        offset = (j - (len(methods) - 1) / 2) * 0.06
        error_ax.errorbar(
            rows["budget"] + offset,
            100 * rows["error"],
            100 * rows["error_std"].fillna(0),
            fmt="o-",
            color=colour,
            capsize=3,
            label=label,
        )
        interval = [
            100 * (rows["diff_vs_single"] - rows["diff_lo"]).fillna(0),
            100 * (rows["diff_hi"] - rows["diff_vs_single"]).fillna(0),
        ]
        diff_ax.errorbar(
            rows["budget"] + offset,
            100 * rows["diff_vs_single"],
            interval,
            fmt="o",
            color=colour,
            capsize=3,
            label=label,
        )
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
    dis_ax.bar(
        x,
        100 * table["disagreement"],
        yerr=100 * table["disagreement_std"].fillna(0),
        color=colours,
        capsize=3,
    )
    dis_ax.set_ylabel("test predictions that differ (%)")
    dis_ax.set_title("disagreement between members (mean +- std over pairs)", fontsize=8)
    dist_ax.bar(x, table["relative_distance"], color=colours)
    dist_ax.set_yscale("log")
    dist_ax.set_ylabel("L2 distance / mean weight norm")
    dist_ax.set_title("distance in weight space (trainable parameters)", fontsize=8)
    for ax in (dis_ax, dist_ax):
        ax.set_xticks(
            x, [f"{label}\n{n} pairs" for label, n in zip(labels, table["pairs"], strict=True)], fontsize=7
        )
        ax.grid(alpha=0.3, axis="y")
    fig.suptitle(f"{study}: how different are the members?")
    fig.tight_layout()
    save(fig, path)


def mode_connectivity(table: pd.DataFrame, path: Path | str, study: str) -> None:
    """Along t for each kind of curve (mean over pairs, band: min to max): train loss (NLL solid, with the L2
    term dashed), test error, and the test error of the two-member ensemble {w1, phi(t)}."""
    fig, axes_ = plt.subplots(1, 3, figsize=(12, 3.6))
    panels = (
        ("train_nll", "train loss"),
        ("test_err", "test error (%)"),
        ("ensemble_err", "error of {w1, phi(t)} (%)"),
    )
    for kind, rows in table.groupby("curve", sort=False):
        by_t = rows.groupby("t")
        colour = CURVE_STYLE[kind]
        for ax, (column, label) in zip(axes_, panels, strict=True):
            scale = 1 if column == "train_nll" else 100
            values = by_t[column]
            ax.plot(values.mean().index, scale * values.mean(), color=colour, label=kind)
            ax.fill_between(
                values.mean().index, scale * values.min(), scale * values.max(), color=colour, alpha=0.15
            )
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


def draw(tables: dict[str, pd.DataFrame], axes: list[str], study: str, out: Path) -> str:
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
        mode_connectivity(tables["curves"], out / "curves.png", study)
        done.append("curves")
    return f"{len(done)} figures"
