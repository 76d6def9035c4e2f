"""Run-to-run variance ("Calibrated Chaos", Jordan 2023): estimators over a runs x examples correctness matrix.

Notation: C is an R x n boolean matrix, C[r, i] = run r classifies test example i correctly; a run's test
accuracy is the row mean; p_i is the column mean (the chance that a random run gets example i right).

- If examples were independent coin flips given p, the accuracy of one run would have the binomial
  (Poisson-binomial) variance  (1/n^2) sum_i p_i (1 - p_i).
- The distribution-wise variance, the variance of a run's accuracy on the whole data distribution, is
  estimated as  n/(n-1) * (Var_runs(acc) - (1/n^2) sum_i p_i (1 - p_i)).
Both use unbiased pieces: Var_runs with ddof=1, and p_i(1-p_i) scaled by R/(R-1) (the plug-in estimate of
p(1-p) from R runs is low by exactly that factor), so the estimates are centred on the truth for any R.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from chaosgrid.grid import SEED_KEYS


def accuracies(correct: np.ndarray) -> np.ndarray:
    return correct.mean(axis=1)


def binomial_variance(correct: np.ndarray) -> float:
    """(1/n^2) * sum_i p_i(1 - p_i), with each p_i(1-p_i) estimated without bias from the R runs."""
    runs, n = correct.shape
    p = correct.mean(axis=0)
    return float((p * (1 - p)).sum() * runs / (runs - 1) / n**2)


def observed_variance(correct: np.ndarray) -> float:
    """Variance of test accuracy across runs (ddof=1)."""
    return float(np.var(accuracies(correct), ddof=1))


def distribution_variance(correct: np.ndarray) -> float:
    """n/(n-1) * (Var_runs(acc) - binomial variance). Raw: may be negative from sampling noise."""
    n = correct.shape[1]
    return n / (n - 1) * (observed_variance(correct) - binomial_variance(correct))


STATISTICS = {
    "var_observed": observed_variance,
    "var_binomial": binomial_variance,
    "var_distribution": distribution_variance,
    "ratio": lambda c: observed_variance(c) / binomial_variance(c) if binomial_variance(c) > 0 else np.nan,
}


def bootstrap_ci(
    correct: np.ndarray, statistic, n_boot: int = 200, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of `statistic` over bootstrap resamples of the runs (the test set held fixed).

    Runs only: resampling examples with replacement duplicates columns, and a duplicated example is
    perfectly correlated with itself within every run, which inflates the observed variance and biases
    every statistic here (measured: a two-way bootstrap put the lower end of the ratio's 95% interval at 1.78 for
    simulated independent errors whose true ratio is 1).
    """
    rng = np.random.default_rng(seed)
    runs = correct.shape[0]
    values = [statistic(correct[rng.integers(0, runs, runs)]) for _ in range(n_boot)]
    low, high = np.nanquantile(values, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def variance_stats(correct: np.ndarray, n_boot: int = 200, seed: int = 0) -> dict:
    """One row of the variance table: accuracy mean/std, the three variances, their ratio, with 95% CIs."""
    correct = np.asarray(correct, dtype=bool)
    acc = accuracies(correct)
    row = {"n_runs": correct.shape[0], "n_examples": correct.shape[1], "mean_acc": float(acc.mean()),
           "std_acc": float(acc.std(ddof=1))}  # fmt: skip
    for name, statistic in STATISTICS.items():
        row[name] = float(statistic(correct))
        row[f"{name}_lo"], row[f"{name}_hi"] = bootstrap_ci(correct, statistic, n_boot, seed=seed)
    row["std_binomial"] = float(np.sqrt(row["var_binomial"]))
    row["std_distribution"] = float(np.sqrt(max(row["var_distribution"], 0.0)))  # clipped for reporting only
    return row


def churn(pred_a: np.ndarray, pred_b: np.ndarray) -> float:
    """Fraction of examples on which two runs predict different classes."""
    return float(np.mean(np.asarray(pred_a) != np.asarray(pred_b)))


def better_seeds(correct: np.ndarray, seed: int = 0) -> dict:
    """Pick the best run on a fixed half A of the test set; report its accuracy on the other half B.

    If some seeds were truly better, the pick would beat the mean on B and A/B accuracies would correlate.
    """
    n = correct.shape[1]
    order = np.random.default_rng(seed).permutation(n)
    half_a, half_b = order[: n // 2], order[n // 2 :]
    acc_a, acc_b = correct[:, half_a].mean(1), correct[:, half_b].mean(1)
    best = int(np.argmax(acc_a))
    rho = spearmanr(acc_a, acc_b).statistic if np.ptp(acc_a) > 0 and np.ptp(acc_b) > 0 else np.nan
    return {"n_runs": len(acc_a), "best_run": best, "best_acc_a": float(acc_a[best]), "mean_acc_a": float(acc_a.mean()),
            "best_acc_b": float(acc_b[best]), "mean_acc_b": float(acc_b.mean()), "std_acc_b": float(acc_b.std(ddof=1)),
            "spearman_ab": float(rho)}  # fmt: skip


def poisson_binomial_accuracies(p: np.ndarray, n_samples: int, seed: int = 0) -> np.ndarray:
    """Accuracies of simulated runs whose examples are independent Bernoulli(p_i): the 'independent' prediction."""
    rng = np.random.default_rng(seed)
    return (rng.random((n_samples, len(p))) < p).mean(axis=1)


def study_tables(runs, prediction_files: list, axes: list[str], n_boot: int = 200):
    """The variance study's tables for every grid point of a study.

    Returns (variance, churn, better_seeds, independence) DataFrames:
    - variance: per grid point x evaluation set, `variance_stats` of its runs' correctness matrix;
    - churn: per grid point, the mean churn between consecutive independent seeds, and for perturbed points
      the churn against the unperturbed twin (same seeds, same other axes) on the clean test set;
    - better_seeds: per grid point, `better_seeds` on the clean test set;
    - independence: per grid point, the clean accuracies of its runs ("observed") and of at least 1,000
      simulated runs with independent per-example errors ("predicted", Poisson-binomial with the observed p_i).
    Diverged runs are left out of every statistic.
    """
    import pandas as pd

    from chaosgrid.aggregate import grid_point_matrices

    runs = runs[~runs["diverged"]]
    variance, better, independence, clean_preds = [], [], [], {}
    matrices = grid_point_matrices(runs, prediction_files, axes, ["correct", "pred"])
    for values, shift, severity, point, m in matrices:
        if len(point) >= 3:
            variance.append({**values, "shift": shift, "severity": severity, **variance_stats(m["correct"], n_boot)})
        if (shift, severity) == ("clean", 0):
            if len(point) >= 3:
                better.append({**values, **better_seeds(m["correct"])})
                observed = accuracies(m["correct"])
                predicted = poisson_binomial_accuracies(m["correct"].mean(0), max(len(observed), 1000))
                for kind, accs in (("observed", observed), ("predicted", predicted)):
                    independence += [{**values, "kind": kind, "acc": float(a)} for a in accs]
            seeds = point[list(SEED_KEYS)].itertuples(index=False, name=None)
            clean_preds[tuple(values.items())] = dict(zip(seeds, m["pred"]))
    churn_rows = []
    for key, preds in clean_preds.items():
        values, runs_preds = dict(key), list(preds.values())
        pairs = [churn(a, b) for a, b in zip(runs_preds[0::2], runs_preds[1::2])]
        churn_rows.append({**values, "comparison": "independent seeds", "n_pairs": len(pairs),
                      "mean_churn": float(np.mean(pairs)), "std_churn": float(np.std(pairs))})  # fmt: skip
        if values.get("perturbation", "none") != "none":
            twin = clean_preds.get(tuple({**values, "perturbation": "none"}.items()), {})
            pairs = [churn(pred, twin[s]) for s, pred in preds.items() if s in twin]
            if pairs:
                churn_rows.append({**values, "comparison": "unperturbed twin", "n_pairs": len(pairs),
                              "mean_churn": float(np.mean(pairs)), "std_churn": float(np.std(pairs))})  # fmt: skip
    return pd.DataFrame(variance), pd.DataFrame(churn_rows), pd.DataFrame(better), pd.DataFrame(independence)
