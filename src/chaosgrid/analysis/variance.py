"""Run-to-run variance per grid point (the `variance` analysis): the estimators of `chaosgrid.estimators` on
each grid point's runs, churn between seeds, better seeds, and runs against independent per-example errors.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from chaosgrid.aggregate import grid_point_matrices
from chaosgrid.cells import SEED_KEYS
from chaosgrid.estimators import accuracies, intervals
from chaosgrid.evalsets import is_clean


def variance_stats(correct: np.ndarray, level: float = 0.95) -> dict:
    """One row of the variance table: accuracy mean/std, the three variances, their ratio, each with its
    `level` interval (`intervals`), and the binomial and distribution-wise std."""
    correct = np.asarray(correct, dtype=bool)
    row = {"n_runs": correct.shape[0], "n_examples": correct.shape[1]}
    for name, (estimate, low, high) in intervals(correct, level).items():
        row[name], row[f"{name}_lo"], row[f"{name}_hi"] = float(estimate), float(low), float(high)
    row["std_binomial"] = float(np.sqrt(row["var_binomial"]))
    row["std_distribution"] = float(np.sqrt(max(row["var_distribution"], 0.0)))  # clipped for reporting only
    return row


def seeds_had_no_effect(correct: np.ndarray) -> bool:
    """Whether 2+ runs classify every example alike: their seeds changed nothing (a trainer that ignores the
    seeds it is given), and a std of 0 would be the tool's finding, not the recipe's."""
    return correct.shape[0] >= 2 and bool((correct == correct[:1]).all())


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
    rho = stats.spearmanr(acc_a, acc_b).statistic if np.ptp(acc_a) > 0 and np.ptp(acc_b) > 0 else np.nan
    return {
        "n_runs": len(acc_a),
        "best_run": best,
        "best_acc_a": float(acc_a[best]),
        "mean_acc_a": float(acc_a.mean()),
        "best_acc_b": float(acc_b[best]),
        "mean_acc_b": float(acc_b.mean()),
        "std_acc_b": float(acc_b.std(ddof=1)),
        "spearman_ab": float(rho),
    }


def poisson_binomial_accuracies(p: np.ndarray, n_samples: int, seed: int = 0) -> np.ndarray:
    """Accuracies of simulated runs whose examples are independent Bernoulli(p_i): the 'independent' prediction."""
    rng = np.random.default_rng(seed)
    return (rng.random((n_samples, len(p))) < p).mean(axis=1)


def study_tables(runs, prediction_files: list, axes: list[str]):
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

    runs = runs[~runs["diverged"]]
    variance, better, independence, clean_preds, identical = [], [], [], {}, {}
    matrices = grid_point_matrices(runs, prediction_files, axes, ["correct", "pred"])
    for values, shift, severity, point, m in matrices:
        if len(point) >= 3:
            variance.append({**values, "shift": shift, "severity": severity, **variance_stats(m["correct"])})
        if is_clean(shift, severity):
            if len(point) >= 3:
                better.append({**values, **better_seeds(m["correct"])})
                observed = accuracies(m["correct"])
                predicted = poisson_binomial_accuracies(m["correct"].mean(0), max(len(observed), 1000))
                for kind, accs in (("observed", observed), ("predicted", predicted)):
                    independence += [{**values, "kind": kind, "acc": float(a)} for a in accs]
            seeds = point[list(SEED_KEYS)].itertuples(index=False, name=None)
            clean_preds[tuple(values.items())] = dict(zip(seeds, m["pred"]))
            identical[tuple(values.items())] = seeds_had_no_effect(m["correct"])
    churn_rows = []
    for key, preds in clean_preds.items():
        values, runs_preds = dict(key), list(preds.values())
        pairs = [churn(a, b) for a, b in zip(runs_preds[0::2], runs_preds[1::2])]
        churn_rows.append(
            {
                **values,
                "comparison": "independent seeds",
                "n_pairs": len(pairs),
                "mean_churn": float(np.mean(pairs)) if pairs else float("nan"),
                "std_churn": float(np.std(pairs)) if pairs else float("nan"),
                "seeds_had_no_effect": identical[key],
            }
        )
        if values.get("perturbation", "none") != "none":
            twin = clean_preds.get(tuple({**values, "perturbation": "none"}.items()), {})
            pairs = [churn(pred, twin[s]) for s, pred in preds.items() if s in twin]
            if pairs:
                churn_rows.append(
                    {
                        **values,
                        "comparison": "unperturbed twin",
                        "n_pairs": len(pairs),
                        "mean_churn": float(np.mean(pairs)),
                        "std_churn": float(np.std(pairs)),
                    }
                )
    return pd.DataFrame(variance), pd.DataFrame(churn_rows), pd.DataFrame(better), pd.DataFrame(independence)
