"""Ensembles at equal budget: which members each method combines, the errors, pairing, and diversity,
on hand-made probabilities whose answers are known."""

import numpy as np
import pandas as pd
import pytest

from chaosgrid.analysis.ensembles import diversity, ensemble_errors, member_pairs, paired_interval

LABELS = np.array([0, 1, 2, 0])


def one_hot(predictions: list[int], confidence: float = 0.9) -> np.ndarray:
    """Probabilities (examples x 3 classes) putting `confidence` on each predicted class."""
    probs = np.full((len(predictions), 3), (1 - confidence) / 2)
    probs[np.arange(len(predictions)), predictions] = confidence
    return probs


def runs(*members_per_run: list[np.ndarray], epochs: float = 10, first_seed: int = 0) -> pd.DataFrame:
    return pd.DataFrame([{"seed_index": first_seed + i, "steps": list(range(1, len(m) + 1)), "probs": np.stack(m),
                          "epochs": epochs} for i, m in enumerate(members_per_run)])  # fmt: skip


def test_errors_pair_each_repetition_with_the_same_seeds_single_models():
    right, wrong_last, wrong_two = one_hot([0, 1, 2, 0]), one_hot([0, 1, 2, 1]), one_hot([1, 1, 2, 1])
    single = runs([wrong_last], [right], [wrong_two], [right])  # errors 0.25, 0, 0.5, 0
    fge = runs([right, wrong_last], [right, right], [wrong_two, wrong_two], [right, wrong_last])
    table = ensemble_errors({"single": single, "ind": single, "fge": fge}, LABELS, budget_epochs=10).set_index(
        ["method", "budget"])  # fmt: skip
    assert table.loc[("single", 1), "error"] == pytest.approx(0.1875)
    assert table.loc[("single", 1), "error_std"] == pytest.approx(np.std([0.25, 0, 0.5, 0], ddof=1))
    ind2 = table.loc[("ind", 2)]
    assert (ind2["repetitions"], ind2["members"], ind2["epochs"]) == (2, 2, 20)
    assert table.loc[("ind", 3), "repetitions"] == 1  # 4 runs make one repetition of 3
    fge1 = table.loc[("fge", 1)]  # run 0's two members tie on example 3: argmax takes the first class (right)
    assert fge1["members"] == 2 and fge1["error"] == pytest.approx((0 + 0 + 0.5 + 0) / 4)
    diffs = np.array([0 - 0.25, 0 - 0, 0.5 - 0.5, 0 - 0])
    assert fge1["diff_vs_single"] == pytest.approx(diffs.mean())
    assert fge1["diff_se"] == pytest.approx(diffs.std(ddof=1) / 2)


def test_single_cycle_spends_one_budget_on_several_fresh_runs():
    right = one_hot([0, 1, 2, 0])
    single = runs(*[[right]] * 2)
    cycles = runs(*[[right]] * 8, epochs=2.5)  # B = 10 epochs buys 4 runs of 2.5
    table = ensemble_errors({"single": single, "single_cycle": cycles}, LABELS, 10).set_index(
        ["method", "budget"]
    )
    assert table.loc[("single_cycle", 1), ["repetitions", "members", "epochs"]].tolist() == [2, 4, 10]
    assert table.loc[("single_cycle", 2), ["repetitions", "members"]].tolist() == [1, 8]
    assert ("single_cycle", 3) not in table.index  # 12 runs needed, 8 exist


def test_member_pairs_are_those_an_ensemble_combines():
    two_runs_of_three = runs(*[[one_hot([0, 1, 2, 0])] * 3] * 2)
    assert len(member_pairs("ind", runs(*[[one_hot([0, 0, 0, 0])]] * 4), 1)) == 6  # all pairs of runs
    assert len(member_pairs("fge", two_runs_of_three, 1)) == 2 * 3  # within each run
    within = member_pairs("sse", two_runs_of_three, 1)
    assert all(a[0] == b[0] and a[1] != b[1] for a, b in within)
    assert len(member_pairs("single_cycle", runs(*[[one_hot([0, 0, 0, 0])]] * 6), 3)) == 2 * 3


def test_diversity_measures_disagreement_and_distance_of_trainable_parameters():
    a, b = one_hot([0, 1, 2, 0]), one_hot([0, 1, 1, 1])
    methods = {"ind": runs([a], [b])}
    weights = {"ind": {0: {1: np.array([3.0, 0.0])}, 1: {1: np.array([0.0, 4.0])}}}
    (row,) = diversity(methods, weights, 10).to_dict("records")
    assert (row["pairs"], row["disagreement"], row["distance"]) == (1, 0.5, 5.0)
    assert row["relative_distance"] == pytest.approx(5.0 / 3.5)  # over the members' mean norm


@pytest.mark.parametrize("n", [4, 6, 12])
def test_the_paired_interval_covers_the_true_difference_95_percent_of_the_time(n):
    """Repetitions' paired differences drawn around a known mean (-0.5 points, spread 0.3): the 95% t interval
    covers it in 95% of 4,000 simulated studies; +-2 standard errors would not at 4 repetitions."""
    rng = np.random.default_rng(n)
    draws = rng.normal(-0.5, 0.3, (4000, n))
    covered = [lo <= -0.5 <= hi for _, _, lo, hi in map(paired_interval, draws)]
    assert 0.935 <= np.mean(covered) <= 0.965
    if n == 4:
        two_se = [abs(m + 0.5) <= 2 * se for m, se, _, _ in map(paired_interval, draws)]
        assert np.mean(two_se) < 0.9
