"""`chaosgrid compare`: the difference between two grid points, its variance parts, verdicts and seeds needed."""

import numpy as np
import pytest
from scipy import stats

from chaosgrid.analysis import compare as c

# A: accuracies 3/4, 2/4; B: 1/4, 1/4 (the same 4 examples)
A = np.array([[1, 1, 1, 0], [1, 1, 0, 0]], dtype=bool)
B = np.array([[1, 0, 0, 0], [1, 0, 0, 0]], dtype=bool)


def test_hand_computed_case():
    row = c.compare(A, B)
    assert row["diff"] == pytest.approx(0.625 - 0.25)
    # observed variances: A (1/8)/1... Var([.75, .5], ddof=1) = 1/32; B: 0
    assert row["se_runs"] == pytest.approx(np.sqrt(1 / 32 / 2))
    # binomial: A's p = 1, 1, .5, 0 -> unbiased p(1-p) = 0, 0, 1/2, 0 -> 1/2/16 = 1/32; B: 0
    assert row["se_binomial"] == pytest.approx(np.sqrt(1 / 32 / 2))
    # paired: d = 0, 1, .5, 0; Var(d, ddof=1) = 0.2292; /4 minus the binomial part 1/64
    assert row["se_test_sampling"] == pytest.approx(np.sqrt(np.var([0, 1, 0.5, 0], ddof=1) / 4 - 1 / 64))
    t = stats.t.ppf(0.975, 1)  # Welch df: B has no spread, so A's 1 degree of freedom
    assert row["test_set_hi"] - row["diff"] == pytest.approx(t * row["se_runs"])
    assert row["distribution_hi"] - row["diff"] == pytest.approx(t * np.hypot(row["se_runs"], row["se_test_sampling"]))
    assert row["test_set_verdict"] == "no evidence"  # 2 runs and t(1) = 12.7: nothing is evidence


def test_runs_needed_matches_the_normal_formula_for_large_samples_and_the_t_test_for_small():
    variance, delta = 0.01**2, 0.005
    normal = 2 * (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) ** 2 * variance / delta**2  # 62.8
    needed = c.runs_needed(variance, delta)
    assert normal < needed <= normal + 2  # the t quantiles add about one run
    power = stats.nct.sf(stats.t.ppf(0.975, 2 * needed - 2), 2 * needed - 2, delta / np.sqrt(2 * variance / needed))
    assert power >= 0.8 > stats.nct.sf(stats.t.ppf(0.975, 2 * needed - 4), 2 * needed - 4,
                                       delta / np.sqrt(2 * variance / (needed - 1)))  # fmt: skip
    assert c.runs_needed(0.0, delta) == 2 and c.runs_needed(1.0, 1e-5) == float("inf")


def simulate_pair(rng, n, runs, delta, studies, fixed_test_set, swing=0.0):
    """`studies` pairs of arms with independent per-example errors: B right on example i with probability
    p_i - e_i, A with p_i + e_i + delta, e_i = ±swing at random (examples one arm finds easier, cancelling
    on the distribution). A fixed test set (the same examples in every study) or a fresh one per study."""
    shape = (1 if fixed_test_set else studies, 1, n)
    p, e = rng.uniform(0.35, 0.85, shape), rng.choice([-swing, swing], shape)
    return rng.random((studies, runs, n)) < p + e + delta, rng.random((studies, runs, n)) < p - e


@pytest.mark.parametrize("runs", [8, 32])
@pytest.mark.parametrize("question, fixed, swing", [("test_set", True, 0.0), ("distribution", False, 0.0),
                                                    ("distribution", False, 0.1)])  # fmt: skip
def test_verdict_false_positive_rate_is_at_most_the_level(runs, question, fixed, swing):
    """No true difference, on this test set (the same examples, the same chances) or on the distribution
    (fresh examples per study; with swing, A and B differ on every example but not on average): the verdict
    claims one in at most 5% of 2,000 studies (+ two standard errors of the simulation)."""
    a, b = simulate_pair(np.random.default_rng(runs), n=359, runs=runs, delta=0.0, studies=2000,
                         fixed_test_set=fixed, swing=swing)  # fmt: skip
    verdicts = [c.compare(x, y, plan=False)[f"{question}_verdict"] for x, y in zip(a, b)]
    false_positive = np.mean([v != "no evidence" for v in verdicts])
    assert false_positive <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 2000), false_positive
    if swing:  # on each test set A and B do differ: the test-set question sees it, more often with more runs
        found = np.mean([c.compare(x, y, plan=False)["test_set_verdict"] != "no evidence" for x, y in zip(a, b)])
        assert found > 2 * false_positive


def test_power_at_the_planned_number_of_runs_is_about_80_percent():
    """Plan from the true per-run variance, run that many seeds per arm: the test-set verdict finds A > B in
    ~80% of studies (the per-run accuracy is close to normal, so the t-test's power holds)."""
    rng = np.random.default_rng(1)
    n, delta = 359, 0.01
    p = rng.uniform(0.3, 0.9, n)
    variance = (p * (1 - p)).sum() / n**2  # Var of one run's accuracy with independent errors
    planned = int(c.runs_needed(variance, delta))
    a = rng.random((600, planned, n)) < p + delta
    b = rng.random((600, planned, n)) < p
    found = np.mean([c.compare(x, y, plan=False)["test_set_verdict"] == "A > B" for x, y in zip(a, b)])
    assert 0.8 - 0.06 < found < 0.8 + 0.08, (planned, found)


def test_neighbours_compare_adjacent_values_with_the_other_axes_equal():
    rng = np.random.default_rng(2)
    points = {(lr, w): rng.random((3, 50)) < 0.7 for lr in (0.1, 0.2, 0.4) for w in (8, 16)}
    rows = c.neighbours(points, ["lr", "width"], {"lr": [0.1, 0.2, 0.4], "width": [8, 16]})
    along_lr = [(r["a"], r["b"], r["width"]) for r in rows if r["axis"] == "lr"]
    assert along_lr == [("0.2", "0.1", 8), ("0.4", "0.2", 8), ("0.2", "0.1", 16), ("0.4", "0.2", 16)]
    assert sum(r["axis"] == "width" for r in rows) == 3


def test_different_test_sets_are_refused():
    with pytest.raises(ValueError, match="different test sets"):
        c.compare(A, B[:, :3])


def test_a_grid_point_whose_runs_diverged_is_named_not_dropped_silently():
    import pandas as pd

    runs = pd.DataFrame({"lr": [0.1, 0.1, 0.1, 5.0, 5.0, 5.0], "diverged": [False, False, False, True, True, False]})
    points = {(0.1,): np.zeros((3, 4), bool)}
    assert c.left_out(runs, ["lr"], points) == [
        "left out: grid point lr=5: 1 converged run(s) of 3 (2 diverged); a comparison needs 2+"]
