"""Is a difference between grid points real, and how many seeds would show it? (after Jordan 2023)

Words (one glossary: compare, the README, the figures' captions and the report use these and only these):
- **run-to-run** variation: how a run's test accuracy varies with its seeds. It has two parts:
  - **per-example coin flips** (the binomial part): what it would be if each run got each test example right
    independently with that example's chance p_i (Jordan finds it most of the run-to-run variance);
  - **distribution-wise** spread: the rest, runs that really differ in accuracy on the data distribution.
- **test-set draw**: another n examples from the same distribution would give another difference between
  A and B (a paired term over examples, separate from run-to-run variation).

Two grid points A and B (R_A and R_B runs, scored on the same n test examples) differ in mean accuracy by
d = mean(acc_A) - mean(acc_B). Its variance: run-to-run var_observed_A/R_A + var_observed_B/R_B, of which
per-example coin flips var_binomial_A/R_A + var_binomial_B/R_B; and the test-set draw, from the paired
per-example differences d_i = p_A,i - p_B,i: Var_i(d_i)/n - var_binomial_A/R_A - var_binomial_B/R_B (their
own coin-flip noise removed). Two questions, two intervals (Student t, Welch's degrees of freedom):
- on this test set: is A better here, expected over seeds? d ± t·sqrt(run-to-run part);
- on the distribution: is A better on new data? d ± t·sqrt(run-to-run + test-set draw).
A *main effect* pools S pairs (A_s, B_s) that differ in one axis, the other axes at each of their S values
(`pooled`): the equal-weight mean of the S differences, its variance their sum over S² (runs are
independent across points; the test-set draw is paired over the shared examples), so one pair is S = 1.
Several comparisons at once: Holm's step-down adjustment keeps the family-wise rate of false verdicts at
1 - level (`holm`). Seeds needed: runs per arm (per grid point) for 80% power at the 5% level (two-sided
t-test) to detect a difference of delta points, from the run-to-run std (this test set) and from the
distribution-wise std (the runs needed if every run were scored on fresh data, so that the test-set draw
vanished: more seeds cannot buy that).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats

from chaosgrid.aggregate import grid_point_matrices
from chaosgrid.analysis.variance import seeds_had_no_effect
from chaosgrid.cells import format_value
from chaosgrid.estimators import binomial_variance, distribution_variance, intervals, observed_variance

DELTAS = (0.1, 0.2, 0.5, 1.0)  # differences in accuracy points (percent) for the seeds-needed table
POWER, ALPHA = 0.8, 0.05
MAX_RUNS = 100_000  # reported as "more than this" (inf)


def runs_needed(variance: float, delta: float, power: float = POWER, alpha: float = ALPHA) -> float:
    """Runs per arm for a two-sided two-sample t-test at `alpha` to reach `power` against a difference
    `delta` (accuracy as a fraction) when each run's accuracy has `variance`: the smallest R with
    (t_{1-alpha/2, 2R-2} + t_{power, 2R-2})² · 2·variance/delta² <= R. At least 2; inf beyond MAX_RUNS."""
    if variance <= 0:
        return 2.0
    need = lambda r: (
        (stats.t.ppf(1 - alpha / 2, 2 * r - 2) + stats.t.ppf(power, 2 * r - 2)) ** 2 * 2 * variance / delta**2
    )
    low, high = 2, 2
    while need(high) > high:
        if high > MAX_RUNS:
            return float("inf")
        low, high = high, 2 * high
    while low < high:  # need(r)/r decreases in r: bisect for the first r that suffices
        mid = (low + high) // 2
        low, high = (mid + 1, high) if need(mid) > mid else (low, mid)
    return float(high)


def compare(correct_a: np.ndarray, correct_b: np.ndarray, level: float = 0.95, plan: bool = True) -> dict:
    """Difference in mean accuracy of A and B (runs x examples correctness, the same examples): `pooled` of
    one pair, and with `plan` (what a reader plans with; simulations of the verdicts skip it) each arm's
    run-to-run / per-example-coin-flip variance ratio with its interval."""
    row = pooled([(correct_a, correct_b)], level, plan)
    for arm, correct in (("a", correct_a), ("b", correct_b)) if plan else ():
        ratio = (
            intervals(np.asarray(correct, dtype=bool), level)["ratio"] if len(correct) >= 3 else (np.nan,) * 3
        )
        row[f"ratio_{arm}"], row[f"ratio_{arm}_lo"], row[f"ratio_{arm}_hi"] = (float(x) for x in ratio)
    return row


def pooled(pairs: list[tuple[np.ndarray, np.ndarray]], level: float = 0.95, plan: bool = True) -> dict:
    """The equal-weight mean D = (1/S) Σ_s d_s of S differences d_s = mean(acc_A_s) - mean(acc_B_s) (each a
    runs x examples correctness pair, all on the same examples), its variance parts, both intervals with
    their verdicts and p-values, and (`plan`) runs per arm and grid point needed for 80% power.

    Var(D) = (1/S²) Σ_s (obs_A_s/R_A_s + obs_B_s/R_B_s) over runs, plus the test-set draw paired over the
    shared examples (its coin-flip part taken out); Welch-Satterthwaite degrees of freedom over the 2S arms.
    Equal weights make D the main effect averaged over the grid; with S > 1, `heterogeneity` asks whether the
    d_s differ (an interaction). The reasoning: docs/statistics.md ("Reading a comparison")."""
    arms = [np.asarray(m, dtype=bool) for pair in pairs for m in pair]
    n, points = arms[0].shape[1], len(pairs)
    if any(m.shape[1] != n for m in arms):
        raise ValueError(f"A and B are scored on different test sets ({n} vs {arms[1].shape[1]} examples)")
    if min(len(m) for m in arms) < 2:
        raise ValueError("each side needs at least 2 runs")
    runs = np.array([len(m) for m in arms], dtype=float)
    obs, bin_, dist = (
        np.array([float(f(m)) for m in arms])
        for f in (observed_variance, binomial_variance, distribution_variance)
    )
    means = np.array([m.mean() for m in arms])
    diffs = means[0::2] - means[1::2]
    diff = float(diffs.mean())
    per_run = obs / runs  # each arm's share of the run-to-run variance of its point's difference
    var_runs = per_run.sum() / points**2
    per_example = sum(a.mean(0) - b.mean(0) for a, b in pairs) / points
    var_draw = max(float(np.var(per_example, ddof=1)) / n - (bin_ / runs).sum() / points**2, 0.0)
    welch = lambda shares, dfs: shares.sum(-1) ** 2 / (shares**2 / dfs).sum(-1)  # Welch-Satterthwaite
    df = welch(per_run, runs - 1) if var_runs > 0 else np.inf
    t = float(stats.t.ppf((1 + level) / 2, df))
    se_test_set, se_distribution = np.sqrt(var_runs), np.sqrt(var_runs + var_draw)
    row = {
        "points": points,
        "n_a": int(runs[0::2].sum()),
        "n_b": int(runs[1::2].sum()),
        "n_examples": n,
        "mean_a": float(means[0::2].mean()),
        "mean_b": float(means[1::2].mean()),
        "diff": diff,
        "se_binomial": float(np.sqrt(max((bin_ / runs).sum(), 0.0)) / points),
        "se_distribution_runs": float(np.sqrt((np.maximum(dist, 0.0) / runs).sum()) / points),
        "se_runs": float(se_test_set),
        "se_test_draw": float(np.sqrt(var_draw)),
        "df": float(df),
    }
    for question, se in (("test_set", se_test_set), ("distribution", se_distribution)):
        row[f"{question}_lo"], row[f"{question}_hi"] = diff - t * se, diff + t * se
        row[f"{question}_verdict"] = verdict(row[f"{question}_lo"], row[f"{question}_hi"])
        row[f"{question}_p"] = (
            float(2 * stats.t.sf(abs(diff) / se, df)) if se > 0 else 1.0 if diff == 0 else 0.0
        )
    if points > 1:
        shares, dfs = per_run.reshape(points, 2), (runs - 1).reshape(points, 2)
        with np.errstate(divide="ignore", invalid="ignore"):
            row.update(heterogeneity(diffs, shares.sum(1), welch(shares, dfs)))
    pooled_obs, pooled_dist = obs.mean() / points, max(dist.mean(), 0.0) / points
    for delta in DELTAS if plan else ():
        row[f"runs_test_set_{delta:g}pt"] = runs_needed(pooled_obs, delta / 100)
        row[f"runs_distribution_{delta:g}pt"] = runs_needed(pooled_dist, delta / 100)
    return row


def heterogeneity(diffs: np.ndarray, variances: np.ndarray, dfs: np.ndarray) -> dict:
    """Whether S differences disagree beyond their run-to-run errors: Welch's (1951) test of equal means
    with unequal, estimated variances (the differences' `variances`, each with Welch-Satterthwaite `dfs`),
    F = [Σ w_s (d_s - d_w)² / (S-1)] / [1 + 2(S-2)/(S²-1) · Λ] on (S-1, (S²-1)/(3Λ)) degrees of freedom,
    w_s = 1/v_s, Λ = Σ (1 - w_s/Σw)²/ν_s. Chosen over Cochran's Q against χ², which treats the variances as
    known and gave 6.2% false verdicts at 8 runs per point (Welch's: tests/test_compare.py). Also the
    smallest and largest d_s; NaN where a point's variance is 0 (runs that do not vary: no scale)."""
    spread = {"diff_min": float(diffs.min()), "diff_max": float(diffs.max())}
    if (variances <= 0).any():
        return {**spread, "heterogeneity_f": np.nan, "heterogeneity_p": np.nan}
    points, weights = len(diffs), 1 / variances
    centre = (weights * diffs).sum() / weights.sum()
    lam = ((1 - weights / weights.sum()) ** 2 / dfs).sum()
    f = (
        (weights * (diffs - centre) ** 2).sum()
        / (points - 1)
        / (1 + 2 * (points - 2) / (points**2 - 1) * lam)
    )
    p = stats.f.sf(f, points - 1, (points**2 - 1) / (3 * lam))
    return {**spread, "heterogeneity_f": float(f), "heterogeneity_p": float(p)}


def holm(rows: list[dict], level: float = 0.95) -> list[dict]:
    """The rows with Holm-adjusted p-values and verdicts for both questions: over the m comparisons made
    together, the family-wise rate of any false verdict stays at most 1 - level (Holm 1979: the k-th
    smallest p-value is scaled by m - k + 1, kept monotone), where per-pair verdicts at 5% each would
    give about 1 - 0.95^m. Each row also records m (`comparisons`)."""
    rows = [{**r, "comparisons": len(rows)} for r in rows]
    for question in ("test_set", "distribution"):
        order = sorted(range(len(rows)), key=lambda i: rows[i][f"{question}_p"])
        adjusted = 0.0
        for rank, i in enumerate(order):
            adjusted = min(max(adjusted, (len(rows) - rank) * rows[i][f"{question}_p"]), 1.0)
            rows[i][f"{question}_p_holm"] = adjusted
            sign = "A > B" if rows[i]["diff"] > 0 else "A < B"
            rows[i][f"{question}_verdict_holm"] = sign if adjusted < 1 - level else "no evidence"
    return rows


def verdict(low: float, high: float) -> str:
    """'A > B' or 'A < B' when the interval excludes 0, else 'no evidence'."""
    return "A > B" if low > 0 else "A < B" if high < 0 else "no evidence"


def value_orders(runs, axes: list[str]) -> dict[str, list]:
    """Each axis's values in the order neighbours are taken: numbers ascending; names (augmentations,
    variants) in the order the study declares them, which the runs table keeps."""
    import pandas as pd

    return {
        a: sorted(runs[a].unique()) if pd.api.types.is_numeric_dtype(runs[a]) else list(pd.unique(runs[a]))
        for a in axes
    }


def label(axes: list[str], key: tuple) -> str:
    """A grid point (or the part of one) as "lr=0.05, width=16"."""
    return ", ".join(f"{a}={format_value(v)}" for a, v in zip(axes, key, strict=True))


def neighbours(
    points: dict[tuple, np.ndarray],
    axes: list[str],
    orders: dict[str, list],
    level: float = 0.95,
    plan: bool = True,
) -> list[dict]:
    """Every comparison of neighbouring values along each axis (in `orders`), the other axes held equal:
    `points` maps a grid point's axis values (in `axes` order) to its correctness matrix; A is the later value.
    Where an axis has others beside it, each neighbouring pair first as a main effect, pooled over the
    other axes' values at which both exist (`pooled`; its `at` says over what), then at each of them."""
    rows = []
    for k, axis in enumerate(axes):
        others = [x for x in axes if x != axis]
        rests = sorted({key[:k] + key[k + 1 :] for key in points})
        at_value = lambda rest, value, k=k: (*rest[:k], value, *rest[k:])
        for before, after in itertools.pairwise(orders[axis]):
            both = [
                rest for rest in rests if at_value(rest, before) in points and at_value(rest, after) in points
            ]
            pair = {"axis": axis, "a": format_value(after), "b": format_value(before)}
            if len(both) > 1:
                pairs = [(points[at_value(r, after)], points[at_value(r, before)]) for r in both]
                rows.append(
                    {
                        **pair,
                        "at": f"pooled over {', '.join(others)}: {len(both)} points",
                        **pooled(pairs, level, plan),
                    }
                )
            for rest in both:
                rows.append(
                    {
                        **pair,
                        "at": label(others, rest),
                        **dict(zip(others, rest, strict=True)),
                        **compare(points[at_value(rest, after)], points[at_value(rest, before)], level, plan),
                    }
                )
    return rows


def eval_points(
    runs, prediction_files: list, axes: list[str]
) -> dict[tuple[str, int], dict[tuple, np.ndarray]]:
    """Per test evaluation set (shift, severity), each grid point's correctness matrix over its converged
    runs (points with 2+ runs)."""
    return comparable(
        (eval_set, key, m) for eval_set, key, _, m in point_matrices(runs, prediction_files, axes)
    )


def point_matrices(runs, prediction_files: list, axes: list[str]):
    """Yield (test evaluation set, grid point, its converged runs' rows, their correctness matrix, row for row)."""

    for values, shift, severity, point, m in grid_point_matrices(
        runs[~runs["diverged"]], prediction_files, axes, ["correct"]
    ):
        yield (shift, severity), tuple(values[a] for a in axes), point, m["correct"]


def comparable(entries) -> dict[tuple[str, int], dict[tuple, np.ndarray]]:
    """{evaluation set: {grid point: correctness matrix}} of (set, point, matrix) entries, keeping the points
    with 2+ runs (what a comparison needs)."""
    sets: dict[tuple[str, int], dict[tuple, np.ndarray]] = {}
    for eval_set, key, matrix in entries:
        if len(matrix) >= 2:
            sets.setdefault(eval_set, {})[key] = matrix
    return sets


def left_out(runs, axes: list[str], points: dict) -> list[str]:
    """A line for each grid point that comparisons leave out (fewer than 2 converged runs), saying why, so a
    point whose runs diverged does not vanish without a word."""
    lines = []
    for key, group in runs.groupby(axes, sort=False) if axes else [((), runs)]:
        key = key if isinstance(key, tuple) else (key,)
        if key not in points:
            where = ", ".join(f"{a}={format_value(v)}" for a, v in zip(axes, key, strict=True)) or "the study"
            diverged = int(group["diverged"].sum())
            lines.append(
                f"left out: grid point {where}: {len(group) - diverged} converged run(s) of {len(group)} "
                f"({diverged} diverged); a comparison needs 2+"
            )
    return lines


def seedless_warning(points: list[str]) -> list[str]:
    """The warning for grid points whose runs are all identical, in the report and in `chaosgrid compare`."""
    if not points:
        return []
    shown = "; ".join(points[:5]) + (f"; and {len(points) - 5} more" if len(points) > 5 else "")
    where = f"{len(points)} grid point{'s' * (len(points) != 1)} ({shown})"
    warning = (
        f"WARNING: seeds had no effect at {where}: every run there classifies every test example "
        f"alike, so its std of 0 and its intervals say nothing about run-to-run variance. Does the "
        f"trainer use the seeds it is given? (chaosgrid check-trainer)"
    )
    return [warning]


def seedless(points: dict[tuple, np.ndarray], axes: list[str]) -> list[str]:
    """The warning for grid points whose runs classify every example alike (`seeds_had_no_effect`)."""
    return seedless_warning(
        [label(axes, key) or "the study" for key, correct in points.items() if seeds_had_no_effect(correct)]
    )


def study_comparisons(runs, prediction_files: list, axes: list[str]):
    """(comparisons,): per test evaluation set, every neighbouring pair along every axis of a study (main
    effects and per point, `neighbours`), with Holm's verdicts over that evaluation set's comparisons."""
    import pandas as pd

    orders = value_orders(runs, axes)
    rows = [
        {"shift": shift, "severity": severity, **row}
        for (shift, severity), points in eval_points(runs, prediction_files, axes).items()
        for row in holm(neighbours(points, axes, orders))
    ]
    return (pd.DataFrame(rows),)


def chosen_values(wanted: dict[str, str], axes: list[str], orders: dict[str, list], option: str) -> dict:
    """The axis values a `--a`/`--b` KEY=VALUE list names, matched as numbers where the axis holds numbers
    (5e-3 is 0.005); ValueError naming the unknown axis or value, with the ones that exist."""
    chosen = {}
    for axis, text in wanted.items():
        if axis not in axes:
            raise ValueError(f"{option}: {axis!r} is not an axis of the study; its axes: {', '.join(axes)}")
        match = [v for v in orders[axis] if _same(text, v)]
        if not match:
            raise ValueError(
                f"{option}: {axis} has no value {text}; its values: "
                f"{', '.join(format_value(v) for v in orders[axis])}"
            )
        chosen[axis] = match[0]
    return chosen


def _same(text: str, value: object) -> bool:
    """Whether a value typed on the command line names an axis value: as numbers where both are, else as text."""
    return float(text) == float(value) if _number(text) and _number(value) else format_value(value) == text


def _number(value: object) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return not isinstance(value, bool)


def between(
    points: dict[tuple, np.ndarray], axes: list[str], a: dict, b: dict, level: float = 0.95, plan: bool = True
) -> list[dict]:
    """A (`a`: values of some axes) against B (`b`: values of the same axes): one pair when they name every
    axis; else the main effect pooled over the other axes' values at which both exist, then each of those
    points. ValueError when A and B name different axes or no point has both."""
    if set(a) != set(b):
        raise ValueError(f"--a names {', '.join(a)} and --b names {', '.join(b)}: name the same axes in both")
    others = [x for x in axes if x not in a]
    point = lambda values, rest: tuple(values[x] if x in values else rest[others.index(x)] for x in axes)
    rests = sorted({tuple(key[axes.index(x)] for x in others) for key in points})
    both = [r for r in rests if point(a, r) in points and point(b, r) in points]
    if not both:
        raise ValueError(
            f"no grid point with 2+ runs has both {label(list(a), tuple(a.values()))} and "
            f"{label(list(b), tuple(b.values()))}"
        )
    pair = {
        "axis": ", ".join(a),
        "a": ", ".join(map(format_value, a.values())),
        "b": ", ".join(map(format_value, b.values())),
    }
    rows = [
        {
            **pair,
            "at": label(others, r),
            **dict(zip(others, r, strict=True)),
            **compare(points[point(a, r)], points[point(b, r)], level, plan),
        }
        for r in both
    ]
    if len(both) == 1:
        return rows
    pairs = [(points[point(a, r)], points[point(b, r)]) for r in both]
    return [
        {**pair, "at": f"pooled over {', '.join(others)}: {len(both)} points", **pooled(pairs, level, plan)},
        *rows,
    ]
