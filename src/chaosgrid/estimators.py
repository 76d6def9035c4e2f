"""Run-to-run variance ("Calibrated Chaos", Jordan 2023): estimators over a runs x examples correctness matrix,
numpy only, so that the tables (`chaosgrid.aggregate`) and the analyses both build on them.

Notation: C is an R x n boolean matrix, C[r, i] = run r classifies test example i correctly; a run's test
accuracy is the row mean; p_i is the column mean (the chance that a random run gets example i right).

- If examples were independent coin flips given p, the accuracy of one run would have the binomial
  (Poisson-binomial) variance  (1/n^2) sum_i p_i (1 - p_i).
- The distribution-wise variance, the variance of a run's accuracy on the whole data distribution, is
  estimated as  n/(n-1) * (Var_runs(acc) - (1/n^2) sum_i p_i (1 - p_i)).
Both use unbiased pieces: Var_runs with ddof=1, and p_i(1-p_i) scaled by R/(R-1) (the plug-in estimate of
p(1-p) from R runs is low by exactly that factor), so the estimates are centred on the truth for any R.
Every estimate comes with an interval whose coverage a simulation with known truth checks (`intervals`).
"""

from __future__ import annotations

import numpy as np
from scipy import stats


def accuracies(correct: np.ndarray) -> np.ndarray:
    return correct.mean(axis=-1)


def _unbiased_p_q(k: np.ndarray, runs: int) -> np.ndarray:
    """Per example, p_i(1 - p_i) estimated without bias from R runs: k(R - k)/(R(R - 1)), k = runs correct.

    It is the fraction of ordered pairs of distinct runs with one right and one wrong, whose expectation
    is exactly p_i(1 - p_i) for independent runs (the plug-in p(1-p) is low by (R-1)/R)."""
    return k * (runs - k) / (runs * (runs - 1))


def binomial_variance(correct: np.ndarray) -> float | np.ndarray:
    """(1/n^2) * sum_i p_i(1 - p_i), each term estimated without bias from the R runs."""
    n = correct.shape[-1]
    k = correct.sum(axis=-2, dtype=np.float64)
    return _unbiased_p_q(k, correct.shape[-2]).sum(axis=-1) / n**2


def observed_variance(correct: np.ndarray) -> float | np.ndarray:
    """Variance of test accuracy across runs (ddof=1)."""
    return np.var(accuracies(correct), axis=-1, ddof=1)


def distribution_variance(correct: np.ndarray) -> float | np.ndarray:
    """n/(n-1) * (Var_runs(acc) - binomial variance). Raw: may be negative from estimation error (few runs)."""
    n = correct.shape[-1]
    return n / (n - 1) * (observed_variance(correct) - binomial_variance(correct))


def _ratio(correct: np.ndarray) -> float | np.ndarray:
    binomial = binomial_variance(correct)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(binomial > 0, observed_variance(correct) / binomial, np.nan)


STATISTICS = {
    "var_observed": observed_variance,
    "var_binomial": binomial_variance,
    "var_distribution": distribution_variance,
    "ratio": _ratio,
}


def jackknife_se(correct: np.ndarray) -> np.ndarray:
    """Leave-one-run-out jackknife standard error of the binomial variance (closed form, vectorised; R >= 3).

    Over runs, so it sees whatever correlation runs induce between examples; the estimator is a U-statistic
    of degree 2 in the runs, for which the jackknife variance is nearly unbiased."""
    runs, n = correct.shape[-2:]
    k = correct.sum(axis=-2, dtype=np.float64)[..., None, :] - correct  # correct counts without run r
    left_out = _unbiased_p_q(k, runs - 1).sum(axis=-1) / n**2  # (..., R)
    spread = ((left_out - left_out.mean(axis=-1, keepdims=True)) ** 2).sum(axis=-1)
    return np.sqrt((runs - 1) / runs * spread)


def variance_interval(acc: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Bonett's (2006) interval for the variance of the last axis's values: a log-scale interval whose
    width follows the sample's kurtosis (from a trimmed mean), so it holds for heavy-tailed run-to-run
    spreads where the chi-square interval, exact only for normal values, covers too little (measured: 0.92
    at 32 runs with a skewed per-run skill effect, vs 0.93 for this one)."""
    runs = acc.shape[-1]
    z = stats.norm.ppf((1 + level) / 2)
    centred = acc - acc.mean(axis=-1, keepdims=True)
    var = (centred**2).sum(axis=-1) / (runs - 1)
    trimmed = stats.trim_mean(acc, 1 / (2 * np.sqrt(runs - 4)), axis=-1) if runs > 4 else acc.mean(axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        kurtosis = runs * ((acc - trimmed[..., None]) ** 4).sum(axis=-1) / ((centred**2).sum(axis=-1)) ** 2
    c = runs / (runs - z)
    se = c * np.sqrt(np.maximum(np.nan_to_num(kurtosis) - (runs - 3) / runs, 0) / (runs - 1))
    return c * var * np.exp(-z * se), c * var * np.exp(z * se)


def accuracy_intervals(acc: np.ndarray, level: float = 0.95) -> dict[str, tuple]:
    """Mean and std of run accuracies (last axis: runs) with their `level` intervals, as (estimate, low, high):
    Student t for the mean, Bonett's interval for the variance (`variance_interval`). The summary table and
    `intervals` share them."""
    runs = acc.shape[-1]
    mean, var = acc.mean(axis=-1), np.var(acc, axis=-1, ddof=1)
    half = stats.t.ppf((1 + level) / 2, runs - 1) * np.sqrt(var / runs)
    low, high = variance_interval(acc, level)
    return {
        "mean_acc": (mean, mean - half, mean + half),
        "var_observed": (var, low, high),
        "std_acc": (np.sqrt(var), np.sqrt(low), np.sqrt(high)),
    }


def intervals(correct: np.ndarray, level: float = 0.95) -> dict[str, tuple]:
    """Point estimate and `level` interval of every reported statistic, each as (estimate, low, high).

    Works on one (R, n) matrix or a stack (..., R, n) of them (the coverage test simulates thousands).
    Mean: Student t over runs; observed variance and std: Bonett's kurtosis-adjusted interval; binomial
    variance: t(R-1) x the jackknife-over-runs standard error; distribution-wise variance and the ratio: the
    observed variance's interval minus / divided by the binomial estimate. Why these, and how they cover:
    docs/statistics.md ("Why these intervals").
    """
    runs, n = correct.shape[-2:]
    found = accuracy_intervals(accuracies(correct), level)
    var_obs, obs_lo, obs_hi = found["var_observed"]
    var_bin = binomial_variance(correct)
    bin_half = stats.t.ppf((1 + level) / 2, runs - 1) * jackknife_se(correct)
    scale = n / (n - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = (var_obs / var_bin, obs_lo / var_bin, obs_hi / var_bin)
    return {
        **found,
        "var_binomial": (var_bin, var_bin - bin_half, var_bin + bin_half),
        "var_distribution": tuple(scale * (v - var_bin) for v in (var_obs, obs_lo, obs_hi)),
        "ratio": ratio,
    }
