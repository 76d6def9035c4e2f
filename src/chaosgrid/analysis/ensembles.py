"""Ensembles at equal training budget (study 3: Huang et al. 2017; Garipov et al. 2018), from the stored
class probabilities, weights and curve tables of a study of independent runs (Ind) and the studies its
`ensembles` block names for the other methods.

The budget B is the Ind runs' epochs. At a budget of k B (k = 1, 2, 3) a repetition ensembles:
- `single`: one Ind run (k = 1 only);
- `ind`: k Ind runs; `nocycle`: every kept checkpoint of k Ind runs (evenly spaced snapshots on the
  single-model schedule, Huang et al.'s NoCycle baseline);
- `sse`: every snapshot (cycle end) of k snapshot-ensemble runs;
- `fge`: the members (the low-lr points, not the final high-lr step) of k FGE runs, each started from the
  Ind run with its seed index at `init_epoch`, so one costs init_epoch + its epochs;
- `single_cycle`: k x (B / its epochs) runs of the single-cycle study, each from a fresh initialisation.
Repetitions take runs in seed order, k at a time, without overlap. An ensemble predicts the argmax of the
mean of its members' softmax. The r-th repetition at k B is paired with the r-th k Ind runs (for sse, fge and
nocycle: the same seed indices, so the same initialisations; FGE also shares their first 80%): the
difference to their mean single-model error removes most of the seed-to-seed spread.

Diversity: over pairs of members (all pairs of Ind runs; pairs within one run for sse, fge and nocycle;
within one repetition for single_cycle), the fraction of test predictions that differ, and the L2 distance
of their trainable parameters (buffers such as BatchNorm statistics left out), also relative to the mean norm.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from chaosgrid.aggregate import read_columns
from chaosgrid.cells import SEED_KEYS
from chaosgrid.evalsets import clean_rows
from chaosgrid.plan.blocks import ENSEMBLE_ROLES, ENSEMBLES_BLOCK
from chaosgrid.store import read_weights

# the seed a seed index moves
SEED_OF = {
    "all": "init_seed",
    **{k.removesuffix("_seed"): k for k in SEED_KEYS},
}

BUDGETS = (1, 2, 3)


def checkpoints(runs: pd.DataFrame, prediction_files: list) -> tuple[pd.DataFrame, np.ndarray]:
    """(one row per converged run in seed order: seed index, epochs it cost, and every kept checkpoint's steps
    and clean-test probabilities (checkpoints x examples x classes), in step order; the test labels)."""
    table = read_columns(
        prediction_files,
        ["cell_id", "step", "shift", "severity", "probs", "labels"],
        probes=False,
        final=False,
    ).to_pandas()
    table = clean_rows(table)
    if table.empty or table["probs"].isna().any():
        raise ValueError("runs store no class probabilities: set `probabilities: true` in their study")
    labels = np.asarray(table["labels"].iloc[0])
    rows = []
    for _, run in runs[~runs["diverged"]].sort_values(list(SEED_KEYS)).iterrows():
        own = table[table["cell_id"] == run["cell_id"]].sort_values("step")
        probs = np.stack([np.asarray(p, dtype=np.float32).reshape(len(labels), -1) for p in own["probs"]])
        rows.append(
            {
                "seed_index": int(run[SEED_OF[run["seed_source"]]]),
                "steps": own["step"].tolist(),
                "probs": probs,
                "epochs": float(run["epochs"]) + float(run["init_epoch"]),
            }
        )
    return pd.DataFrame(rows), labels


def members(checkpoints_: pd.DataFrame, method: str, last: int = 0) -> pd.DataFrame:
    """The checkpoints a method ensembles, per run: the final one (single, ind, single_cycle), all but the
    final one (fge: its low-lr points; the final step ends a cycle at the high lr), the `last` ones (sse,
    when given), else all (sse, nocycle)."""
    keep = {
        "single": slice(-1, None),
        "ind": slice(-1, None),
        "single_cycle": slice(-1, None),
        "fge": slice(None, -1),
        "sse": slice(-last, None) if last else slice(None),
    }.get(method, slice(None))
    chosen = checkpoints_.copy()
    chosen["steps"] = [steps[keep] for steps in chosen["steps"]]
    chosen["probs"] = [probs[keep] for probs in chosen["probs"]]
    return chosen


def _error(probs: np.ndarray, labels: np.ndarray) -> float:
    """Test error of the ensemble of `probs` (members x examples x classes): argmax of the mean softmax."""
    return float((probs.mean(0).argmax(-1) != labels).mean())


def runs_per_budget(method: str, runs: pd.DataFrame, budget_epochs: float) -> int:
    """Runs that one budget B buys: B / their epochs for single_cycle (each trains one cycle), else 1."""
    return max(1, round(budget_epochs / runs["epochs"].median())) if method == "single_cycle" else 1


def ensemble_errors(
    methods: dict[str, pd.DataFrame], labels: np.ndarray, budget_epochs: float
) -> pd.DataFrame:
    """The `ensembles` table: per method and budget, the error over repetitions, and its paired difference to
    the mean single-model error of the Ind runs of the same repetition (the r-th k runs in seed order; for
    sse, fge and nocycle those with the same seed indices), with its standard error and 95% t interval."""
    single = [_error(p, labels) for p in methods["single"]["probs"]]
    rows = []
    for method, runs in methods.items():
        per_budget = runs_per_budget(method, runs, budget_epochs)
        for k in (1,) if method == "single" else BUDGETS:
            size = k * per_budget
            groups = [runs.iloc[i : i + size] for i in range(0, len(runs) - size + 1, size)]
            if not groups:
                continue
            errors = np.array([_error(np.concatenate(list(g["probs"])), labels) for g in groups])
            paired = np.array(
                [
                    e - np.mean(single[r * k : (r + 1) * k])
                    for r, e in enumerate(errors)
                    if (r + 1) * k <= len(single)
                ]
            )
            diff, se, lo, hi = paired_interval(paired)
            rows.append(
                {
                    "method": method,
                    "budget": k,
                    "repetitions": len(groups),
                    "members": sum(len(p) for p in groups[0]["probs"]),
                    "epochs": groups[0]["epochs"].sum(),
                    "error": errors.mean(),
                    "error_std": errors.std(ddof=1) if len(errors) > 1 else np.nan,
                    "diff_vs_single": diff,
                    "diff_se": se,
                    "diff_lo": lo,
                    "diff_hi": hi,
                }
            )
    return pd.DataFrame(rows)


def paired_interval(diffs: np.ndarray, level: float = 0.95) -> tuple[float, float, float, float]:
    """(mean, standard error, and a t interval at `level`) of paired differences over repetitions: with 4-12
    repetitions the t quantile (3.18 at 4) is needed, +-2 standard errors covers only ~86% at 4 (tested)."""
    from scipy import stats

    if len(diffs) < 2:
        return (float(diffs.mean()) if len(diffs) else np.nan), np.nan, np.nan, np.nan
    mean, se = float(diffs.mean()), float(diffs.std(ddof=1) / np.sqrt(len(diffs)))
    half = float(stats.t.ppf((1 + level) / 2, len(diffs) - 1)) * se
    return mean, se, mean - half, mean + half


def member_pairs(method: str, runs: pd.DataFrame, per_budget: int) -> list[tuple[tuple, tuple]]:
    """Pairs of members an ensemble of `method` combines, each member as (seed index, step, probabilities):
    all pairs of Ind runs, pairs within one repetition of single_cycle, pairs within one run otherwise."""
    records = runs.to_dict("records")
    if method == "ind":
        groups = [records]
    elif method == "single_cycle":
        groups = [records[i : i + per_budget] for i in range(0, len(records), per_budget)]
    else:
        groups = [[r] for r in records]
    pairs = []
    for group in groups:
        flat = [(r["seed_index"], s, p) for r in group for s, p in zip(r["steps"], r["probs"], strict=True)]
        pairs += list(itertools.combinations(flat, 2))
    return pairs


def diversity(
    methods: dict[str, pd.DataFrame], weights: dict[str, dict], budget_epochs: float
) -> pd.DataFrame:
    """The `diversity` table: per method, the mean over member pairs of test-prediction disagreement and of the
    L2 distance between trainable parameters (also relative to the members' mean norm)."""
    rows = []
    for method, runs in methods.items():
        pairs = member_pairs(method, runs, runs_per_budget(method, runs, budget_epochs))
        if method == "single" or not pairs:
            continue
        flat = weights[method]
        disagreement = np.array([(p.argmax(-1) != q.argmax(-1)).mean() for (_, _, p), (_, _, q) in pairs])
        distance = np.array([np.linalg.norm(flat[i][s] - flat[j][t]) for (i, s, _), (j, t, _) in pairs])
        norm = np.mean([np.linalg.norm(flat[i][s]) for pair in pairs for i, s, _ in pair])
        rows.append(
            {
                "method": method,
                "pairs": len(pairs),
                "disagreement": disagreement.mean(),
                "disagreement_std": disagreement.std(ddof=1) if len(pairs) > 1 else np.nan,
                "distance": distance.mean(),
                "relative_distance": distance.mean() / norm,
            }
        )
    return pd.DataFrame(rows)


def flat_weights(weight_files: list) -> dict[int, dict[int, np.ndarray]]:
    """Every kept checkpoint's trainable parameters as one vector, by seed index and step."""
    flat = {}
    for path in weight_files:
        content = read_weights(path)
        for index, run in content["runs"].items():
            flat[index] = {
                step: np.concatenate([state[n].reshape(-1).numpy() for n in content["parameters"]])
                for step, state in run["weights"].items()
            }
    return flat


def study_ensembles(
    runs: pd.DataFrame,
    prediction_files: list,
    axes: list[str],
    weights: list,
    curves: list,
    ensembles: dict | None = None,
    **roles: list,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(ensembles, diversity, curves) of a study with an `ensembles` block (`ensembles`, for its options):
    its own runs (single, ind, nocycle) and, for each method the block names, that study's `<method>_runs`
    table, `<method>_predictions` and `<method>_weights` files."""
    curve_rows = pd.concat([pd.read_parquet(f) for f in curves]) if curves else pd.DataFrame()
    if not roles:  # a study with curves alone: no ensembles to compare
        return pd.DataFrame(), pd.DataFrame(), curve_rows
    if axes:
        raise ValueError(f"an ensembles study has one grid point; this one has axes {', '.join(axes)}")
    budget_epochs = float(runs["epochs"].iloc[0])
    studies = {"ind": (runs, prediction_files, weights)}  # single and nocycle are read from Ind's files
    for role in ENSEMBLE_ROLES:
        if f"{role}_runs" in roles:
            studies[role] = (
                pd.read_parquet(roles[f"{role}_runs"][0]),
                roles[f"{role}_predictions"],
                roles[f"{role}_weights"],
            )
    read = {study: (*checkpoints(r, files), flat_weights(w)) for study, (r, files, w) in studies.items()}
    labels = read["ind"][1]
    methods, weight_vectors = {}, {}
    for method in ("single", "ind", "nocycle", *(r for r in ENSEMBLE_ROLES if r in studies)):
        study = method if method in studies else "ind"
        last = ENSEMBLES_BLOCK.complete(ensembles)["sse_last"] if method == "sse" else 0
        methods[method], weight_vectors[method] = members(read[study][0], method, last), read[study][2]
    return (
        ensemble_errors(methods, labels, budget_epochs),
        diversity(methods, weight_vectors, budget_epochs),
        curve_rows,
    )
