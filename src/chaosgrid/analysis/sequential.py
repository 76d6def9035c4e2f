"""Seeds until the answer is known: a study adds blocks of seeds while its comparisons are undecided.

A study's `until` block declares its question and budget, e.g.
``until: {compare: {axis: weight_decay}, on: test_set, delta: 0.5, block: 8, max_seeds: 64}``: every grid point
trains `block` seeds; after each block ("look") every comparison still open is judged, and only the grid
points of open comparisons train another block, up to `max_seeds`. A comparison is a pair of neighbouring
values along `axis` (pooled over the other axes: a main effect, `chaosgrid.analysis.compare.pooled`), or the
points `a` and `b` name.

Looking after every block and stopping when a fixed-sample 95% interval excludes 0 claims differences that
are not there far more often than 5% (measured in tests/test_sequential.py). Instead each look uses a
*repeated confidence interval* of a group-sequential design (Jennison & Turnbull 2000, ch. 9): the K =
max_seeds/block looks share the error rate by Lan & DeMets' O'Brien-Fleming-type spending function
(`boundaries`; t = seeds so far / max_seeds). The intervals of all looks hold
the truth together with probability 1 - alpha, so either way a comparison stops, its claim errs with
probability at most alpha, whatever the stopping rule:
- success: the interval excludes 0 (A > B or A < B);
- futility: the interval lies inside (-delta, +delta): a difference of `delta` or more is ruled out;
- budget: `max_seeds` reached undecided (the final interval is still reported).
Chosen over anytime-valid confidence sequences, which need a known variance or a bounded range: accuracy
differences are bounded by ±1 but vary by ~0.01, and a betting or empirical-Bernstein sequence pays for the
range (its width at 8 runs exceeds any effect of interest); a design over K planned looks pays only for the
looks. O'Brien-Fleming-type spending keeps the last look's interval within a few percent of the fixed
design's, so a study that runs to its budget loses almost no power; it stops early only for clear answers.
The boundaries are computed for the normal statistic (recursive numerical integration, Armitage,
McPherson & Rowe 1969) and carried over to the t statistic of each look at its degrees of freedom (equal
tail probability). Several comparisons share alpha equally (Bonferroni), so the chance of any false claim
over the whole procedure stays at most alpha.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from chaosgrid.aggregate import read_columns
from chaosgrid.analysis.compare import between, comparable, point_matrices, value_orders
from chaosgrid.cells import format_value
from chaosgrid.evalsets import CLEAN
from chaosgrid.plan.until import Until

GRID = 401  # points of the integration grid (odd: Simpson's rule)
# its weights: error O(h^4), not a Riemann sum's O(h)
SIMPSON = np.r_[1, np.tile([4, 2], (GRID - 3) // 2), 4, 1] / 3
RESOLVED = 1e-13  # a look's spending below this is carried by its tail alone (see `boundaries`)


@functools.cache
def boundaries(looks: int, alpha: float) -> tuple[float, ...]:
    """Two-sided critical values z_1..z_K of K equally spaced looks under O'Brien-Fleming-type alpha spending
    (Lan & DeMets 1983), alpha/2 per side, alpha_side(t) = 2·(1 - Phi(z_{1-alpha/4}/sqrt(t))) (gsDesign's
    sfLDOF): P(|Z_j| >= z_j first at look k) = alpha(k/K) - alpha((k-1)/K) for a Brownian motion, computed
    by recursive integration of the density of the not-yet-stopped statistic on a grid.

    Early looks spend astronomically little (1e-100 at the first of 64): the spending is computed in the
    tails (`norm.sf`/`isf`, never 1 - cdf, which rounds to 0), and a look whose share is below `RESOLVED`
    takes the boundary its unconditional tail gives, since paths stopped before it carry less than that."""
    from scipy import stats
    from scipy.optimize import brentq
    from scipy.special import ndtr  # Phi without scipy.stats overhead

    pdf = lambda x: np.exp(-0.5 * x * x) / np.sqrt(2 * np.pi)
    z_quarter = stats.norm.isf(alpha / 4)
    spent = lambda t: 4 * stats.norm.sf(z_quarter / np.sqrt(t))  # both sides
    fractions = np.arange(1, looks + 1) / looks
    critical = [float(stats.norm.isf(spent(fractions[0]) / 2))]
    # W(t) = Z·sqrt(t): the density of the paths not yet stopped, on a grid inside the last boundary
    grid = np.linspace(-1, 1, GRID) * critical[0] * np.sqrt(fractions[0])
    density = stats.norm.pdf(grid, scale=np.sqrt(fractions[0]))
    for k in range(1, looks):
        mass, step, reach = (
            density * SIMPSON * (grid[1] - grid[0]),
            np.sqrt(fractions[k] - fractions[k - 1]),
            np.sqrt(fractions[k]),
        )
        target = spent(fractions[k]) - spent(fractions[k - 1])
        if target < RESOLVED:
            critical.append(float(stats.norm.isf(target / 2)))
        else:
            leaving = lambda c, mass=mass, step=step, reach=reach, grid=grid: float(
                (mass * (ndtr((grid - c * reach) / step) + ndtr((-grid - c * reach) / step))).sum()
            )
            critical.append(
                float(
                    brentq(
                        lambda c, leaving=leaving, target=target: leaving(c) - target, 0.1, 40.0, xtol=1e-10
                    )
                )
            )
        new_grid = np.linspace(-1, 1, GRID) * critical[-1] * reach
        density = pdf((new_grid[:, None] - grid[None, :]) / step) @ mass / step
        grid = new_grid
    return tuple(critical)


def critical_t(until: Until, look: int, df: float, comparisons: int) -> float:
    """The look's critical value for a t statistic with `df` degrees of freedom: the normal boundary's tail
    probability at that look, for alpha shared equally by `comparisons` (Bonferroni)."""
    from scipy import stats

    z = boundaries(until.looks, (1 - until.level) / comparisons)[look - 1]
    return float(stats.t.isf(stats.norm.sf(z), df)) if np.isfinite(df) else z


def judge(row: dict, until: Until, look: int, comparisons: int) -> dict:
    """A look at one comparison (`row`: chaosgrid.analysis.compare.pooled's result on the seeds so far): its
    repeated confidence interval and what it decides (success, futility, budget, or open)."""
    se = row["se_runs"] if until.on == "test_set" else float(np.hypot(row["se_runs"], row["se_test_draw"]))
    half = critical_t(until, look, row["df"], comparisons) * se
    low, high = row["diff"] - half, row["diff"] + half
    delta = until.delta / 100
    if low > 0 or high < 0:
        status, verdict = "success", "A > B" if low > 0 else "A < B"
    elif -delta < low and high < delta:
        status, verdict = "futility", f"|A - B| < {format_value(until.delta)} points"
    elif look == until.looks:
        status, verdict = "budget", "undecided"
    else:
        status, verdict = "open", "undecided"
    return {
        "look": look,
        "seeds": look * until.block,
        "max_seeds": until.max_seeds,
        "delta": delta,
        "diff": row["diff"],
        "lo": low,
        "hi": high,
        "se": se,
        "df": row["df"],
        "status": status,
        "verdict": verdict,
    }


def comparisons(until: Until, axes: list[str], orders: dict[str, list]) -> list[tuple[str, dict, dict]]:
    """The comparisons `until` asks for, as (name, A's values, B's values) over some axes: each pair of
    neighbouring values along its axis (A the later), or its two points."""
    if not until.axis:
        a, b = dict(until.a), dict(until.b)
        name = lambda v: ", ".join(f"{k}={format_value(x)}" for k, x in v.items())
        return [(f"{name(a)} vs {name(b)}", a, b)]
    values = orders[until.axis]
    return [
        (
            f"{until.axis}={format_value(after)} vs {format_value(before)}",
            {until.axis: after},
            {until.axis: before},
        )
        for before, after in itertools.pairwise(values)
    ]


def history(
    points_by_look, until: Until, axes: list[str], orders: dict[str, list], last: int = 0
) -> list[dict]:
    """Every comparison's looks, in order, until it stops or look `last` (0: the budget's last): each look
    judged on `points_by_look(k)`, each grid point's correctness matrix over its first k blocks of seeds
    (grid points without k blocks are absent). The workflow's decisions and the study's table both come
    from here, so they cannot disagree."""

    asked = comparisons(until, axes, orders)
    rows, open_ = [], {name for name, _, _ in asked}
    for look in range(1, (last or until.looks) + 1):
        points = points_by_look(look)
        for name, a, b in asked:
            if name not in open_:
                continue
            try:
                row = between(
                    points, axes, _matched(a, orders), _matched(b, orders), until.level, plan=False
                )[0]
            except ValueError:
                continue  # its points have no runs at this look (they stopped with another comparison)
            rows.append({"comparison": name, **judge(row, until, look, len(asked))})
            if rows[-1]["status"] != "open":
                open_.discard(name)
        if not open_:
            break
    return rows


def _matched(values: dict, orders: dict[str, list]) -> dict:
    """Config values as the runs table holds them (0.005 written as 5e-3 is the axis value 0.005)."""
    return {
        axis: next(v for v in orders[axis] if format_value(v) == format_value(value))
        for axis, value in values.items()
    }


def continuing(
    rows: list[dict], until: Until, points, axes: list[str], orders: dict[str, list]
) -> list[tuple]:
    """The grid points (of `points`: axis values in `axes` order) of the comparisons still open after the
    last look in `rows`: they train the next block."""
    status = {r["comparison"]: r["status"] for r in rows}
    sides = [
        _matched(side, orders)
        for name, a, b in comparisons(until, axes, orders)
        if status.get(name) == "open"
        for side in (a, b)
    ]
    return sorted(
        p for p in points if any(all(p[axes.index(k)] == v for k, v in side.items()) for side in sides)
    )


def points_by_look(runs, prediction_files: list, axes: list[str], until: Until):
    """For `history`: look k -> each grid point's clean-test correctness over its first k blocks of seeds
    (a run's block is its shard's first seed index // block). The predictions are read once, each look keeps
    its blocks' rows (reading them again at every look would read look k's files k times)."""

    first_seed = runs["shard"].str.rpartition("seeds~")[2].str.extract(r"^(\d+)")[0].astype(int)
    block = first_seed // until.block
    read = [
        (key, block[point.index].to_numpy(), matrix)
        for eval_set, key, point, matrix in point_matrices(runs, prediction_files, axes)
        if eval_set == CLEAN
    ]
    return lambda k: comparable((CLEAN, key, matrix[blocks < k]) for key, blocks, matrix in read).get(
        CLEAN, {}
    )


def study_decisions(runs, prediction_files: list, axes: list[str], until: dict):
    """(looks, decisions): every comparison's repeated confidence interval at each look it took, and its last
    look (how it stopped: success, futility or budget; seeds used; verdict; final interval)."""
    import pandas as pd

    declared = Until.of(until)
    rows = history(
        points_by_look(runs, prediction_files, axes, declared), declared, axes, value_orders(runs, axes)
    )
    looks = pd.DataFrame(rows)
    return looks, looks.groupby("comparison", sort=False).tail(1).reset_index(drop=True)


def decide(run_files: list, prediction_files: list, axes: list[str], until: dict, look: int) -> dict:
    """The workflow's decision after look `look` (its shards so far): every comparison's looks, and the key
    prefixes ("lr~0.05/") of the grid points that train the next block, empty when every comparison has
    stopped."""

    declared = Until.of(until)
    runs = read_columns(run_files).to_pandas()
    orders = value_orders(runs, axes)
    rows = history(points_by_look(runs, prediction_files, axes, declared), declared, axes, orders, last=look)
    prefixes = dict(
        zip(
            runs[axes].itertuples(index=False, name=None) if axes else [()] * len(runs),
            runs["shard"].str.rpartition("seeds~")[0],
        )
    )
    going = continuing(rows, declared, list(prefixes), axes, orders) if look < declared.looks else []
    return {"look": look, "looks": rows, "continue": [prefixes[p] for p in going]}
