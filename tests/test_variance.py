import numpy as np
import pytest
from scipy.special import expit, logit

from chaosgrid import estimators as est
from chaosgrid.analysis import variance as v

HAND = np.array([[1, 1, 0, 0], [1, 0, 1, 0], [1, 1, 1, 0]], dtype=bool)


def test_hand_computed_case():
    # accuracies 0.5, 0.5, 0.75: Var (ddof=1) = 1/48; p = 1, 2/3, 2/3, 0: sum p(1-p) = 4/9, x R/(R-1) = 2/3
    assert est.observed_variance(HAND) == pytest.approx(1 / 48)
    assert est.binomial_variance(HAND) == pytest.approx((2 / 3) / 16)
    assert est.distribution_variance(HAND) == pytest.approx(4 / 3 * (1 / 48 - 1 / 24))
    assert est.STATISTICS["ratio"](HAND) == pytest.approx(0.5)


def simulate(runs, n, run_sd, seed=0):
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.3, 0.9, n)
    skill = rng.normal(0, run_sd, (runs, 1))
    return rng.random((runs, n)) < p + skill


def test_independent_errors_give_ratio_one_and_no_distribution_variance():
    correct = simulate(400, 2000, run_sd=0.0)
    stats = v.variance_stats(correct)
    assert stats["ratio"] == pytest.approx(1, abs=0.25)
    assert abs(stats["var_distribution"]) < 0.3 * stats["var_binomial"]
    assert stats["ratio_lo"] < 1 < stats["ratio_hi"]


def test_run_level_skill_is_recovered_as_distribution_variance():
    correct = simulate(400, 2000, run_sd=0.02)
    stats = v.variance_stats(correct)
    assert stats["var_distribution"] == pytest.approx(0.02**2, rel=0.25)
    assert stats["var_distribution_lo"] < 0.02**2 < stats["var_distribution_hi"]
    assert stats["ratio"] > 3


def true_statistics(p: np.ndarray, skill_sd: float) -> dict:
    """What every reported statistic estimates, for runs right on example i with probability
    expit(logit(p_i) + s), s ~ N(0, skill_sd) per run (0: independent errors), by Gauss-Hermite quadrature."""
    n = len(p)
    z, w = np.polynomial.hermite_e.hermegauss(60)
    w = w / w.sum()
    p_z = expit(logit(p)[None, :] + skill_sd * z[:, None])  # (nodes, n)
    acc = p_z.mean(1)
    p_bar = w @ p_z
    var_obs = w @ (acc - w @ acc) ** 2 + w @ (p_z * (1 - p_z)).sum(1) / n**2
    var_bin = (p_bar * (1 - p_bar)).sum() / n**2
    return {"mean_acc": p_bar.mean(), "std_acc": np.sqrt(var_obs), "var_observed": var_obs, "var_binomial": var_bin,
            "var_distribution": n / (n - 1) * (var_obs - var_bin), "ratio": var_obs / var_bin}  # fmt: skip


PROFILES = {  # per-example chance of being right, n = 359 as digits' test set
    "digits-like": np.clip(np.random.default_rng(5).beta(8, 0.4, 359), 0.01, 0.999),  # mean 0.95, most near 1
    "uniform": np.random.default_rng(6).uniform(0.3, 0.9, 359),
}


@pytest.mark.parametrize("runs", [8, 32])
@pytest.mark.parametrize("profile, skill_sd", [("digits-like", 0.0), ("uniform", 0.0), ("uniform", 0.3),
                                               ("digits-like", 0.3)])  # fmt: skip
def test_every_interval_covers_the_truth_and_holds_its_estimate(runs, profile, skill_sd):
    """Coverage of every reported 95% interval over 1,000 simulated studies whose truth is known: independent
    errors (true ratio 1, distribution-wise variance 0) and real run-level skill (variance > 0).

    Measured with the percentile bootstrap these replace, at 8 runs: var_binomial 0.04-0.65, var_observed
    0.70-0.75, ratio and var_distribution 0.75-0.83. Known limit: a stronger skewed skill effect (logit sd
    0.6 on the digits-like profile) brings the variance intervals to ~0.90 at 32 runs."""
    p = PROFILES[profile]
    rng = np.random.default_rng(runs)
    skill = rng.normal(0, skill_sd, (1000, runs, 1))
    correct = rng.random((1000, runs, len(p))) < expit(logit(p) + skill)
    truth = true_statistics(p, skill_sd)
    for name, (estimate, low, high) in est.intervals(correct).items():
        coverage = np.mean((low <= truth[name]) & (truth[name] <= high))
        assert coverage >= 0.93, f"{name}: coverage {coverage:.3f}"
        assert np.all((low <= estimate) & (estimate <= high)), name


def test_unbiased_binomial_variance_over_many_small_experiments():
    """With only 5 runs, the R/(R-1) correction keeps the binomial estimate centred on the truth."""
    rng = np.random.default_rng(1)
    p = rng.uniform(0.2, 0.95, 300)
    truth = (p * (1 - p)).sum() / 300**2
    estimates = [est.binomial_variance(rng.random((5, 300)) < p) for _ in range(400)]
    assert np.mean(estimates) == pytest.approx(truth, rel=0.03)


def test_churn_and_better_seeds():
    assert v.churn([1, 2, 3, 4], [1, 2, 0, 0]) == 0.5
    correct = simulate(64, 1000, run_sd=0.0, seed=3)
    result = v.better_seeds(correct)
    assert result["best_acc_a"] >= result["mean_acc_a"]
    assert abs(result["best_acc_b"] - result["mean_acc_b"]) < 4 * result["std_acc_b"]
    assert abs(result["spearman_ab"]) < 0.4  # no real seed quality in independent runs
    skilled = v.better_seeds(simulate(64, 1000, run_sd=0.05, seed=3))
    assert skilled["spearman_ab"] > 0.5  # real run-level skill transfers between halves


def test_poisson_binomial_matches_binomial_variance():
    p = np.random.default_rng(0).uniform(0.5, 1.0, 500)
    samples = v.poisson_binomial_accuracies(p, 20000)
    assert samples.mean() == pytest.approx(p.mean(), abs=1e-3)
    assert samples.var() == pytest.approx((p * (1 - p)).sum() / 500**2, rel=0.05)
