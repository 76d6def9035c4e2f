"""Seeds until the answer is known (chaosgrid.analysis.sequential): the boundaries, and the whole procedure's error
rates and seeds by simulation with known truth, beside looking naively after every block."""

import numpy as np
import pytest
from scipy import stats

from chaosgrid.analysis import compare as c
from chaosgrid.analysis import sequential as seq
from chaosgrid.cells import GridError
from chaosgrid.plan.until import Until

# Two grid points, blocks of 8 seeds up to 64 (8 looks); runs scored on 400 examples at ~80%, so a run's
# accuracy varies by ~2 points (coin flips, plus a skill per run) and the difference worth detecting is
# 1.2 points: a fixed design of 64 seeds per arm has ~93% power against it.
UNTIL = Until.of({"compare": {"a": {"x": 1}, "b": {"x": 0}}, "delta": 1.2, "block": 8, "max_seeds": 64})
N, P = 400, 0.8
STUDIES = 1000


def boundaries_as_published():
    """gsDesign's sfLDOF, two-sided 0.05 (0.025 per side), 5 equally spaced looks (Jennison & Turnbull)."""
    assert seq.boundaries(5, 0.05) == pytest.approx((4.877, 3.357, 2.680, 2.290, 2.031), abs=2e-3)


def test_the_boundaries_are_the_published_obrien_fleming_type_ones_and_spend_alpha():
    boundaries_as_published()
    rng = np.random.default_rng(0)  # a Brownian motion seen at 8 looks crosses them with probability alpha
    paths = np.cumsum(rng.normal(0, np.sqrt(1 / 8), (200_000, 8)), axis=1) / np.sqrt(np.arange(1, 9) / 8)
    crossed = (np.abs(paths) >= np.array(seq.boundaries(8, 0.05))).any(axis=1).mean()
    assert crossed == pytest.approx(0.05, abs=3 * np.sqrt(0.05 * 0.95 / 200_000))


def simulate(rng, difference):
    """One study: every seed's correctness on one test set for A (chance P + difference) and B (P), each run
    with its own skill; returns points_by_look for `history` (the first k blocks of seeds)."""
    p = np.clip(rng.normal(P, 0.1, N), 0.05, 0.95)
    arms = {x: rng.random((UNTIL.max_seeds, N)) < p + rng.normal(0, 0.005, (UNTIL.max_seeds, 1)) + shift
            for x, shift in ((0, 0.0), (1, difference))}  # fmt: skip
    return lambda k: {(x,): m[: k * UNTIL.block] for x, m in arms.items()}


def run(rng, difference):
    by_look = simulate(rng, difference)
    rows = seq.history(by_look, UNTIL, ["x"], {"x": [0, 1]})
    naive = next((k for k in range(1, UNTIL.looks + 1)
                  if c.pooled([(by_look(k)[(1,)], by_look(k)[(0,)])], plan=False)["test_set_verdict"] != "no evidence"),
                 None)  # fmt: skip
    return rows[-1], naive


def test_with_no_difference_the_procedure_claims_one_at_most_5_percent_of_the_time_and_naive_peeking_more():
    """1,000 studies with no true difference: the procedure's verdict (at whatever look it stops) claims one in
    at most 5% (+ two standard errors); stopping at the first look whose fixed-sample interval excludes 0
    claims one far more often. Most studies stop for futility (a difference of delta ruled out)."""
    rng = np.random.default_rng(1)
    results = [run(rng, 0.0) for _ in range(STUDIES)]
    false = np.mean([last["status"] == "success" for last, _ in results])
    naive = np.mean([looked is not None for _, looked in results])
    futile = np.mean([last["status"] == "futility" for last, _ in results])
    print(f"no difference: false verdicts {false:.3f}, naive peeking {naive:.3f}, futility {futile:.3f}, "
          f"mean seeds {np.mean([last['seeds'] for last, _ in results]):.1f}")  # fmt: skip
    assert false <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / STUDIES) < 0.1 < naive
    assert futile > 0.5


def test_a_difference_of_delta_is_found_in_80_percent_of_studies_with_fewer_seeds_than_a_fixed_design():
    """1,000 studies with a true difference of delta: the procedure finds it (A > B) in at least 80% within
    max_seeds, never claims the opposite, wrongly rules it out (futility) in at most 5% (+ 2 SE), and uses
    fewer seeds on average than a fixed design of equal power (from the t-test's power at the true std)."""
    rng = np.random.default_rng(2)
    delta = UNTIL.delta / 100
    results = [run(rng, delta)[0] for _ in range(STUDIES)]
    power = np.mean([r["verdict"] == "A > B" for r in results])
    seeds = np.mean([r["seeds"] for r in results])
    assert not any(r["verdict"] == "A < B" for r in results)
    futile = np.mean([r["status"] == "futility" for r in results])
    assert futile <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / STUDIES)
    rng = np.random.default_rng(3)  # a run's accuracy std, from 50 more studies' 128 runs each
    std = np.sqrt(
        np.mean([np.var(m.mean(1), ddof=1) for _ in range(50) for m in simulate(rng, delta)(8).values()])
    )
    fixed = next(r for r in range(2, 1000) if stats.nct.sf(stats.t.ppf(0.975, 2 * r - 2), 2 * r - 2,
                                                            delta / (std * np.sqrt(2 / r))) >= power)  # fmt: skip
    print(f"difference delta: power {power:.3f}, futility {futile:.3f}, mean seeds {seeds:.1f} of {UNTIL.max_seeds}; a fixed design of "
          f"equal power needs {fixed}")  # fmt: skip
    assert power >= 0.8 and seeds < fixed


@pytest.mark.parametrize(
    "until, named",
    [
        ({"compare": {"axis": "width"}, "delta": 0.5, "block": 8, "max_seeds": 64}, "width"),
        ({"compare": {"axis": "lr"}, "delta": 0.5, "block": 16, "max_seeds": 8}, "block"),
        ({"compare": {"axis": "lr"}, "delta": 0, "block": 8, "max_seeds": 64}, "delta"),
        ({"compare": {"axis": "lr"}, "delta": -1, "block": 8, "max_seeds": 64}, "delta"),
        ({"compare": {"axis": "lr"}, "delta": 0.5, "block": 8, "max_seeds": 60}, "max_seeds"),
        ({"compare": {"axis": "lr"}, "delta": 0.5, "block": 8, "max_seeds": 64, "on": "both"}, "on"),
        ({"compare": {"axis": "lr"}, "delta": 0.5, "block": 8, "max_seeds": 64, "stop": 1}, "stop"),
        ({"compare": {"a": {"lr": 0.3}, "b": {"lr": 0.1}}, "delta": 0.5, "block": 8, "max_seeds": 64}, "0.3"),
    ],
)
def test_a_bad_until_block_is_refused_at_planning_naming_the_key(until, named):
    from chaosgrid.plan.studies import expand_study

    with pytest.raises(GridError, match=named):
        expand_study("s", {"lr": [0.1, 0.2], "until": until})
    with pytest.raises(GridError, match="seeds"):
        expand_study("s", {"lr": [0.1, 0.2], "seeds": 4, "until": {**until, "delta": 0.5}})


def test_an_adaptive_study_plans_every_block_up_to_its_budget():
    from chaosgrid.plan.studies import expand_study

    keys = [s.key for s in expand_study("s", {"lr": [0.1, 0.2], "until": {"compare": {"axis": "lr"}, "delta": 0.5,
                                                                           "block": 4, "max_seeds": 12}})]  # fmt: skip
    assert keys == [f"lr~{lr}/seeds~{b}-{b + 3}" for lr in ("0.1", "0.2") for b in (0, 4, 8)]


def spending_by_mvn(critical: tuple[float, ...]) -> float:
    """P(|Z_k| >= c_k at some look) for K equally spaced looks of a Brownian motion, by Genz's integration of
    the K-variate normal (scipy): an independent computation of what `boundaries` integrates recursively."""
    k = len(critical)
    t = np.arange(1, k + 1) / k
    cov = np.sqrt(np.minimum.outer(t, t) / np.maximum.outer(t, t))
    normal = stats.multivariate_normal(np.zeros(k), cov, seed=0, maxpts=100_000 * k, abseps=1e-7, releps=1e-7)
    return 1 - normal.cdf(np.array(critical), lower_limit=-np.array(critical))


def test_boundaries_exist_for_every_number_of_looks_up_to_64_at_a_bonferroni_share():
    """Many looks at a small alpha: the first look's spending (~1e-100 at 64 looks) is computed in the tails;
    1 - Phi rounded it to 0 and brentq failed on NaN (14 looks at 0.05; 10 at 0.05 / 4)."""
    for looks in range(1, 65):
        critical = seq.boundaries(looks, 0.05 / 4)
        assert np.isfinite(critical).all() and all(np.diff(critical) < 0), looks
        assert critical[-1] == pytest.approx(stats.norm.isf(0.05 / 8), abs=0.3)  # near the fixed design's
    assert np.isfinite(seq.boundaries(14, 0.05)).all()


@pytest.mark.parametrize("looks, alpha", [(2, 0.05), (5, 0.0125), (10, 0.0125), (14, 0.05)])
def test_the_boundaries_spend_exactly_alpha_by_an_independent_computation(looks, alpha):
    assert spending_by_mvn(seq.boundaries(looks, alpha)) == pytest.approx(alpha, rel=1e-4)


def test_64_looks_spend_alpha_in_a_simulated_brownian_motion():
    critical = np.array(seq.boundaries(64, 0.0125))
    rng, crossed, n = np.random.default_rng(1), 0, 1_000_000
    for _ in range(10):
        paths = np.cumsum(rng.normal(0, np.sqrt(1 / 64), (n // 10, 64)), axis=1) / np.sqrt(
            np.arange(1, 65) / 64
        )
        crossed += int((np.abs(paths) >= critical).any(axis=1).sum())
    assert crossed / n == pytest.approx(0.0125, abs=4 * np.sqrt(0.0125 / n))


def skewed_against_steady(rng, until, spread):
    """One study with no true difference where Welch's t is weakest: arm 1's runs shifted by a right-skewed
    lognormal of std `spread`, arm 0's runs alike at the same expected accuracy."""
    p = np.clip(rng.normal(P, 0.1, N), 0.05, 0.95)
    lognormal = lambda z: (
        spread * (np.exp(z) - np.exp(0.5)) / np.sqrt((np.e - 1) * np.e)
    )  # mean 0, std spread
    nodes, weights = np.polynomial.hermite_e.hermegauss(80)
    expected = (weights / weights.sum()) @ np.clip(p + lognormal(nodes)[:, None], 0, 1).mean(1)
    m = until.max_seeds
    arms = {1: rng.random((m, N)) < np.clip(p + lognormal(rng.normal(0, 1, (m, 1))), 0, 1),
            0: rng.random((m, N)) < p + (expected - p.mean()) + rng.normal(0, 0.0005, (m, 1))}  # fmt: skip
    return lambda k: {(x,): a[: k * until.block] for x, a in arms.items()}


def test_a_skewed_arm_against_a_steady_one_raises_the_error_rate_to_the_documented_limit():
    """docs/statistics.md states the limit: 5.9% (+-0.5%) false claims at blocks of 8 up to 64 seeds with runs
    spread by 6 points, skewed, against 5% promised. This keeps it there (1,000 studies)."""
    rng = np.random.default_rng(0)
    claims = [seq.history(skewed_against_steady(rng, UNTIL, 0.06), UNTIL, ["x"], {"x": [0, 1]})[-1]["status"]
              == "success" for _ in range(1000)]  # fmt: skip
    assert np.mean(claims) < 0.08
