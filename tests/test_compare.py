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
    assert row["se_test_draw"] == pytest.approx(np.sqrt(np.var([0, 1, 0.5, 0], ddof=1) / 4 - 1 / 64))
    t = stats.t.ppf(0.975, 1)  # Welch df: B has no spread, so A's 1 degree of freedom
    assert row["test_set_hi"] - row["diff"] == pytest.approx(t * row["se_runs"])
    assert row["distribution_hi"] - row["diff"] == pytest.approx(
        t * np.hypot(row["se_runs"], row["se_test_draw"])
    )
    assert row["test_set_verdict"] == "no evidence"  # 2 runs and t(1) = 12.7: nothing is evidence


def test_runs_needed_matches_the_normal_formula_for_large_samples_and_the_t_test_for_small():
    variance, delta = 0.01**2, 0.005
    normal = 2 * (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) ** 2 * variance / delta**2  # 62.8
    needed = c.runs_needed(variance, delta)
    assert normal < needed <= normal + 2  # the t quantiles add about one run
    power = stats.nct.sf(
        stats.t.ppf(0.975, 2 * needed - 2), 2 * needed - 2, delta / np.sqrt(2 * variance / needed)
    )
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
    verdicts = [c.pooled([(x, y)], plan=False)[f"{question}_verdict"] for x, y in zip(a, b)]
    false_positive = np.mean([v != "no evidence" for v in verdicts])
    assert false_positive <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 2000), false_positive
    if swing:  # on each test set A and B do differ: the test-set question sees it, more often with more runs
        found = np.mean(
            [c.pooled([(x, y)], plan=False)["test_set_verdict"] != "no evidence" for x, y in zip(a, b)]
        )
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
    found = np.mean([c.pooled([(x, y)], plan=False)["test_set_verdict"] == "A > B" for x, y in zip(a, b)])
    assert 0.8 - 0.06 < found < 0.8 + 0.08, (planned, found)


def test_neighbours_compare_adjacent_values_with_the_other_axes_equal():
    rng = np.random.default_rng(2)
    points = {(lr, w): rng.random((3, 50)) < 0.7 for lr in (0.1, 0.2, 0.4) for w in (8, 16)}
    rows = c.neighbours(points, ["lr", "width"], {"lr": [0.1, 0.2, 0.4], "width": [8, 16]})
    along_lr = [(r["a"], r["b"], r.get("width", r["at"])) for r in rows if r["axis"] == "lr"]
    pooled = "pooled over width: 2 points"
    assert along_lr == [("0.2", "0.1", pooled), ("0.2", "0.1", 8), ("0.2", "0.1", 16),
                        ("0.4", "0.2", pooled), ("0.4", "0.2", 8), ("0.4", "0.2", 16)]  # fmt: skip
    assert [r["at"] for r in rows if r["axis"] == "width"] == [
        "pooled over lr: 3 points",
        "lr=0.1",
        "lr=0.2",
        "lr=0.4",
    ]
    main = rows[0]
    assert main["diff"] == pytest.approx(np.mean([rows[1]["diff"], rows[2]["diff"]]))


def test_different_test_sets_are_refused():
    with pytest.raises(ValueError, match="different test sets"):
        c.compare(A, B[:, :3])


def test_a_grid_point_whose_runs_diverged_is_named_not_dropped_silently():
    import pandas as pd

    runs = pd.DataFrame(
        {"lr": [0.1, 0.1, 0.1, 5.0, 5.0, 5.0], "diverged": [False, False, False, True, True, False]}
    )
    points = {(0.1,): np.zeros((3, 4), bool)}
    assert c.left_out(runs, ["lr"], points) == [
        "left out: grid point lr=5: 1 converged run(s) of 3 (2 diverged); a comparison needs 2+"
    ]


def simulate_grid(rng, runs, n, deltas, swing=0.05):
    """Pairs (A_s, B_s) at S points of another axis on one test set: B right on example i with chance
    p_i + c_s (c_s: the point's own level), A with p_i + c_s + delta_s + e_i (e_i = ±swing: examples A finds
    easier or harder), each run shifted by its own skill u_r (a distribution-wise spread). Returns the pairs
    and the true main effects: on this test set mean_s(delta_s) + mean_i(e_i); on the distribution mean_s(delta_s)."""
    p, e = rng.uniform(0.35, 0.85, n), rng.choice([-swing, swing], n)
    skill = lambda: np.clip(rng.normal(0, 0.01, (runs, 1)), -0.03, 0.03)
    pairs = [(rng.random((runs, n)) < p + level + delta + e + skill(), rng.random((runs, n)) < p + level + skill())
             for level, delta in zip(np.linspace(-0.05, 0.05, len(deltas)), deltas)]  # fmt: skip
    return pairs, np.mean(deltas) + e.mean(), np.mean(deltas)


@pytest.mark.parametrize("runs", [8, 32])
def test_main_effect_intervals_cover_the_true_effect(runs):
    """A main effect over 3 points whose true differences are 0, 1 and 2 points (an interaction), each study
    on a fresh test set: both 95% intervals cover their truth in at least 93% of 1,000 studies, and the
    heterogeneity line (Welch's test) sees the interaction more often than it claims one where there is none."""
    rng = np.random.default_rng(runs)
    covered, found = {"test_set": 0, "distribution": 0}, 0
    for _ in range(1000):
        pairs, on_test_set, on_distribution = simulate_grid(rng, runs, 300, [0.0, 0.01, 0.02])
        row = c.pooled(pairs, plan=False)
        covered["test_set"] += row["test_set_lo"] <= on_test_set <= row["test_set_hi"]
        covered["distribution"] += row["distribution_lo"] <= on_distribution <= row["distribution_hi"]
        found += row["heterogeneity_p"] < 0.05
    assert min(covered.values()) >= 930, covered
    false = np.mean([c.pooled(simulate_grid(rng, runs, 300, [0.01] * 3, swing=0)[0], plan=False)["heterogeneity_p"]
                     < 0.05 for _ in range(1000)])  # fmt: skip
    assert false <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 1000) and found / 1000 > false, (false, found)


def null_grid(rng, runs, n, p, bump=0.0):
    """A 3 x 3 grid on one test set (chances p): no point differs from another, except (1, 1) by `bump`."""
    return {
        (i, j): rng.random((runs, n)) < p + (bump if (i, j) == (1, 1) else 0.0)
        for i in range(3)
        for j in range(3)
    }


GRIDS = 600


def test_holm_keeps_the_family_wise_rate_of_false_verdicts_at_5_percent():
    """No true difference anywhere in a 3 x 3 grid (8 runs per point, fresh test set per grid): of its 16
    comparisons (12 neighbouring pairs, 4 main effects), Holm's verdicts claim any difference in at most 5%
    of 600 grids (+ two standard errors); per-pair verdicts at 5% each claim one far more often. With one
    point 6 points better, Holm finds it (a verdict on one of its comparisons) in most grids."""
    rng = np.random.default_rng(3)
    orders = {"x": [0, 1, 2], "y": [0, 1, 2]}
    any_false = {"holm": 0, "each": 0}
    for _ in range(GRIDS):
        rows = c.holm(
            c.neighbours(null_grid(rng, 8, 200, rng.uniform(0.35, 0.85, 200)), ["x", "y"], orders, plan=False)
        )
        assert len(rows) == 16 and rows[0]["comparisons"] == 16
        any_false["holm"] += any(r["distribution_verdict_holm"] != "no evidence" for r in rows)
        any_false["each"] += any(r["distribution_verdict"] != "no evidence" for r in rows)
    assert (
        any_false["holm"] / GRIDS <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / GRIDS) < 0.2 < any_false["each"] / GRIDS
    ), any_false
    found = np.mean([any(r["test_set_verdict_holm"] != "no evidence" for r in
                         c.holm(c.neighbours(null_grid(rng, 8, 200, rng.uniform(0.35, 0.85, 200), 0.06), ["x", "y"], orders, plan=False)))
                     for _ in range(300)])  # fmt: skip
    print(f"family-wise false verdicts: Holm {any_false['holm'] / GRIDS:.3f}, per pair {any_false['each'] / GRIDS:.3f}; "
          f"power with one point 6 points better: {found:.2f}")  # fmt: skip
    assert found > 0.5


def test_holm_adjusts_the_smallest_p_value_most():
    rows = c.holm(
        [{"diff": d, "test_set_p": p, "distribution_p": p} for d, p in [(1, 0.01), (-1, 0.02), (1, 0.3)]]
    )
    assert [r["test_set_p_holm"] for r in rows] == pytest.approx([0.03, 0.04, 0.3])
    assert [r["test_set_verdict_holm"] for r in rows] == ["A > B", "A < B", "no evidence"]


def test_a_main_effect_of_one_point_is_that_pair_and_values_match_as_numbers():
    rng = np.random.default_rng(4)
    points = {(lr, wd): rng.random((4, 60)) < 0.7 for lr in (0.1, 0.2) for wd in (0.0, 0.005)}
    orders = {"lr": [0.1, 0.2], "wd": [0.0, 0.005]}
    a, b = c.chosen_values({"wd": "5e-3"}, ["lr", "wd"], orders, "--a"), {"wd": 0.0}
    main, *each = c.between(points, ["lr", "wd"], a, b)
    assert main["at"] == "pooled over lr: 2 points" and [r["at"] for r in each] == ["lr=0.1", "lr=0.2"]
    assert main["diff"] == pytest.approx(np.mean([r["diff"] for r in each]))
    one = c.between(points, ["lr", "wd"], {"lr": 0.1, "wd": 0.005}, {"lr": 0.1, "wd": 0.0})
    assert len(one) == 1 and one[0]["diff"] == each[0]["diff"] and one[0]["points"] == 1
    with pytest.raises(ValueError, match="its values: 0, 0.005"):
        c.chosen_values({"wd": "0.05"}, ["lr", "wd"], orders, "--a")
    with pytest.raises(ValueError, match="same axes"):
        c.between(points, ["lr", "wd"], a, {"lr": 0.1})


def test_the_figure_draws_no_runs_needed_on_the_distribution_where_no_spread_is_detected(
    tmp_path, monkeypatch
):
    """Runs that agree beyond their coin flips leave the distribution-wise variance at 0: its runs needed
    are unknown, not 2 (compare's text says so; the figure leaves them out and says why)."""
    import pandas as pd

    from chaosgrid.figures import compare as figure

    rng = np.random.default_rng(3)
    points = {(lr,): np.tile(rng.random(200) < 0.7, (4, 1)) for lr in (0.1, 0.2)}  # runs that agree exactly
    points[0.4,] = rng.random((4, 200)) < np.array(
        [[0.5], [0.6], [0.7], [0.8]]
    )  # runs whose accuracy differs
    rows = c.holm(c.neighbours(points, ["lr"], {"lr": [0.1, 0.2, 0.4]}))
    table = pd.DataFrame([{"shift": "clean", "severity": 0, **r} for r in rows])
    drawn = {}
    monkeypatch.setattr(figure, "save", lambda fig, path: drawn.setdefault("fig", fig))
    figure.comparisons(table, tmp_path / "c.png", "s")
    labels = [t.get_text() for t in drawn["fig"].axes[-1].get_legend().get_texts()]
    spread = int((table["se_distribution_runs"] > 0).sum())
    assert 0 < spread < len(table), table["se_distribution_runs"]
    assert labels[1] == f"on the distribution (median of {spread} with distribution-wise spread)"
