"""Is a difference between two grid points real, and how many seeds would show it? (after Jordan 2023)

Two grid points A and B (R_A and R_B runs, scored on the same n test examples) differ in mean test accuracy
by d = mean(acc_A) - mean(acc_B). Its variance has three parts:
- per-example coin flips: var_binomial_A/R_A + var_binomial_B/R_B (each run's accuracy is a sum of n
  nearly independent right/wrong outcomes; what Jordan finds to be most of the run-to-run variance);
- real run-to-run differences on the distribution: var_distribution_A/R_A + var_distribution_B/R_B;
  (these two add up to the observed run-to-run variance, var_observed/R, on this test set);
- test-set sampling: another n examples from the distribution would give another difference. Paired over
  examples: with d_i = p_A,i - p_B,i the difference in the fraction of runs right on example i,
  Var_i(d_i)/n - var_binomial_A/R_A - var_binomial_B/R_B (the per-example noise of d_i removed).
Two questions, two intervals (Student t with Welch's degrees of freedom):
- test set: is A better than B *on this test set*, expected over seeds? d ± t·sqrt(run-to-run part);
- distribution: is A better than B *on the data distribution*? d ± t·sqrt(run-to-run + test-set parts).
Seeds needed: runs per arm for 80% power at the 5% level (two-sided t-test) to detect a difference of delta
points, from the observed std (the test-set question) and from the distribution-wise std (the runs needed
if every run were scored on fresh data, so that test-set sampling vanished: more seeds cannot buy that).
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats

from chaosgrid.analysis.variance import binomial_variance, distribution_variance, observed_variance
from chaosgrid.cells import format_value
from chaosgrid.evalsets import is_clean

DELTAS = (0.1, 0.2, 0.5, 1.0)  # differences in accuracy points (percent) for the seeds-needed table
POWER, ALPHA = 0.8, 0.05
MAX_RUNS = 100_000  # reported as "more than this" (inf)


def runs_needed(variance: float, delta: float, power: float = POWER, alpha: float = ALPHA) -> float:
    """Runs per arm for a two-sided two-sample t-test at `alpha` to reach `power` against a difference
    `delta` (accuracy as a fraction) when each run's accuracy has `variance`: the smallest R with
    (t_{1-alpha/2, 2R-2} + t_{power, 2R-2})² · 2·variance/delta² <= R. At least 2; inf beyond MAX_RUNS."""
    if variance <= 0:
        return 2.0
    need = lambda r: (stats.t.ppf(1 - alpha / 2, 2 * r - 2) + stats.t.ppf(power, 2 * r - 2)) ** 2 * 2 * variance / delta**2
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
    """Difference in mean accuracy of A and B (runs x examples correctness, the same examples), its
    variance parts, the test-set and distribution intervals with their verdicts, and (`plan`) seeds needed."""
    correct_a, correct_b = np.asarray(correct_a, dtype=bool), np.asarray(correct_b, dtype=bool)
    (runs_a, n), runs_b = correct_a.shape, correct_b.shape[0]
    if correct_b.shape[1] != n:
        raise ValueError(f"A and B are scored on different test sets ({n} vs {correct_b.shape[1]} examples)")
    if min(runs_a, runs_b) < 2:
        raise ValueError("each side needs at least 2 runs")
    acc_a, acc_b = correct_a.mean(1), correct_b.mean(1)
    diff = float(acc_a.mean() - acc_b.mean())
    obs_a, obs_b = float(observed_variance(correct_a)), float(observed_variance(correct_b))
    bin_a, bin_b = float(binomial_variance(correct_a)), float(binomial_variance(correct_b))
    dist_a, dist_b = float(distribution_variance(correct_a)), float(distribution_variance(correct_b))
    per_example = correct_a.mean(0) - correct_b.mean(0)
    var_runs = obs_a / runs_a + obs_b / runs_b
    var_test = max(float(np.var(per_example, ddof=1)) / n - bin_a / runs_a - bin_b / runs_b, 0.0)
    # Welch-Satterthwaite degrees of freedom of the run-to-run part (the test-set part's are ~n, many more)
    df = var_runs**2 / ((obs_a / runs_a) ** 2 / (runs_a - 1) + (obs_b / runs_b) ** 2 / (runs_b - 1)) if var_runs > 0 else np.inf
    t = float(stats.t.ppf((1 + level) / 2, df))
    se_test_set, se_distribution = np.sqrt(var_runs), np.sqrt(var_runs + var_test)
    row = {
        "n_a": runs_a, "n_b": runs_b, "n_examples": n, "mean_a": float(acc_a.mean()), "mean_b": float(acc_b.mean()),
        "diff": diff, "se_binomial": float(np.sqrt(max(bin_a / runs_a + bin_b / runs_b, 0.0))),
        "se_distribution_runs": float(np.sqrt(max(dist_a, 0.0) / runs_a + max(dist_b, 0.0) / runs_b)),
        "se_runs": float(se_test_set), "se_test_sampling": float(np.sqrt(var_test)), "df": float(df),
        "test_set_lo": diff - t * se_test_set, "test_set_hi": diff + t * se_test_set,
        "distribution_lo": diff - t * se_distribution, "distribution_hi": diff + t * se_distribution,
    }  # fmt: skip
    row["test_set_verdict"] = verdict(row["test_set_lo"], row["test_set_hi"])
    row["distribution_verdict"] = verdict(row["distribution_lo"], row["distribution_hi"])
    pooled_obs, pooled_dist = (obs_a + obs_b) / 2, max((dist_a + dist_b) / 2, 0.0)
    for delta in DELTAS if plan else ():
        row[f"runs_test_set_{delta:g}pt"] = runs_needed(pooled_obs, delta / 100)
        row[f"runs_distribution_{delta:g}pt"] = runs_needed(pooled_dist, delta / 100)
    return row


def verdict(low: float, high: float) -> str:
    """'A > B' or 'A < B' when the interval excludes 0, else 'no evidence'."""
    return "A > B" if low > 0 else "A < B" if high < 0 else "no evidence"


def value_orders(runs, axes: list[str]) -> dict[str, list]:
    """Each axis's values in the order neighbours are taken: numbers ascending; names (augmentations,
    variants) in the order the study declares them, which the runs table keeps."""
    import pandas as pd

    return {a: sorted(runs[a].unique()) if pd.api.types.is_numeric_dtype(runs[a]) else list(pd.unique(runs[a]))
            for a in axes}  # fmt: skip


def neighbours(points: dict[tuple, np.ndarray], axes: list[str], orders: dict[str, list],
               level: float = 0.95) -> list[dict]:  # fmt: skip
    """Every comparison of neighbouring values along each axis (in `orders`), the other axes held equal:
    `points` maps a grid point's axis values (in `axes` order) to its correctness matrix; A is the later value."""
    rows = []
    for k, axis in enumerate(axes):
        for rest in sorted({key[:k] + key[k + 1 :] for key in points}):
            present = {key[k] for key in points if key[:k] + key[k + 1 :] == rest}
            values = [v for v in orders[axis] if v in present]
            for before, after in itertools.pairwise(values):
                a, b = (*rest[:k], after, *rest[k:]), (*rest[:k], before, *rest[k:])
                fixed = dict(zip([x for x in axes if x != axis], rest, strict=True))
                at = ", ".join(f"{ax}={format_value(v)}" for ax, v in fixed.items())
                rows.append({"axis": axis, "a": format_value(after), "b": format_value(before), "at": at, **fixed,
                             **compare(points[a], points[b], level)})  # fmt: skip
    return rows


def clean_points(runs, prediction_files: list, axes: list[str]) -> dict[tuple, np.ndarray]:
    """Each grid point's clean-test correctness matrix over its converged runs (points with 2+ runs)."""
    from chaosgrid.aggregate import grid_point_matrices

    points = {}
    for values, shift, severity, point, m in grid_point_matrices(runs[~runs["diverged"]], prediction_files, axes,
                                                                 ["correct"]):  # fmt: skip
        if is_clean(shift, severity) and len(point) >= 2:
            points[tuple(values[a] for a in axes)] = m["correct"]
    return points


def left_out(runs, axes: list[str], points: dict) -> list[str]:
    """A line for each grid point that comparisons leave out (fewer than 2 converged runs), saying why, so a
    point whose runs diverged does not vanish without a word."""
    lines = []
    for key, group in runs.groupby(axes, sort=False) if axes else [((), runs)]:
        key = key if isinstance(key, tuple) else (key,)
        if key not in points:
            where = ", ".join(f"{a}={format_value(v)}" for a, v in zip(axes, key, strict=True)) or "the study"
            diverged = int(group["diverged"].sum())
            lines.append(f"left out: grid point {where}: {len(group) - diverged} converged run(s) of {len(group)} "
                         f"({diverged} diverged); a comparison needs 2+")  # fmt: skip
    return lines


def study_comparisons(runs, prediction_files: list, axes: list[str]):
    """(comparisons,): every neighbouring pair along every axis of a study, on the clean test set."""
    import pandas as pd

    points = clean_points(runs, prediction_files, axes)
    return (pd.DataFrame(neighbours(points, axes, value_orders(runs, axes))),)
