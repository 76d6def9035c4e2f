"""The comparisons in words: each row's two questions (this test set; the data distribution), its interval,
verdict and Holm family, as `chaosgrid compare` prints them."""

from __future__ import annotations

import numpy as np

from chaosgrid.analysis.compare import (
    DELTAS,
)


def describe(rows: list[dict], level: float = 0.95) -> str:
    """Comparisons as readable text, in accuracy points: a block for each main effect or lone pair, a line
    for each grid point of a main effect; first, how many comparisons were made and what Holm's adjustment
    promises."""
    alpha = f"{100 * (1 - level):g}%"
    lines = []
    if len(rows) > 1:
        lines.append(
            f"{len(rows)} comparisons: at {alpha} each, about {len(rows) * (1 - level):.1f} false verdicts "
            f"are expected where nothing differs; the Holm verdicts keep the chance of any false verdict "
            f"at {alpha} over these {len(rows)} (the family asked for here; the study's results page "
            f"adjusts over every comparison of its evaluation set, a larger family)."
        )
    main = None  # the pair whose main effect was the last block: its grid points follow as lines
    for r in rows:
        if r["points"] > 1:
            main = (r["axis"], r["a"], r["b"])
        if r["points"] == 1 and main == (r["axis"], r["a"], r["b"]):
            lines.append(
                f"    at {r['at']}: A - B {_points(r['diff'])}, this test set {_interval(r, 'test_set')} "
                f"{r['test_set_verdict']}{_holm(r, 'test_set', len(rows))}"
            )
        else:
            lines += ["", *_block(r, level, len(rows))]
    return "\n".join(lines).strip("\n")


def _points(x: float) -> str:
    return f"{100 * x:+.2f}"


def _interval(row: dict, question: str) -> str:
    return f"[{_points(row[f'{question}_lo'])}, {_points(row[f'{question}_hi'])}]"


def _holm(row: dict, question: str, made: int) -> str:
    return f"   Holm: {row[f'{question}_verdict_holm']}" if made > 1 else ""


def _block(r: dict, level: float, made: int) -> list[str]:
    """The lines of one comparison (a pair or a main effect) of `made` comparisons."""
    title = f"{r['axis']}: A={r['a']} vs B={r['b']}" + (f" ({r['at']})" if r.get("at") else "")
    runs = "runs" if r["points"] == 1 else f"runs over {r['points']} points"
    block = [
        title,
        (
            f"  mean accuracy   A {100 * r['mean_a']:.2f}% ({r['n_a']} {runs})   B {100 * r['mean_b']:.2f}% "
            f"({r['n_b']} {runs})   A - B {_points(r['diff'])} points"
        ),
        (
            f"  std of A - B    run-to-run {100 * r['se_runs']:.2f} (per-example coin flips "
            f"{100 * r['se_binomial']:.2f}, distribution-wise {100 * r['se_distribution_runs']:.2f}); "
            f"test-set draw {100 * r['se_test_draw']:.2f}"
        ),
    ]
    if r["points"] == 1 and not np.isnan(r.get("ratio_a", np.nan)):
        ratio = {
            arm: f"{r[f'ratio_{arm}']:.2f} [{r[f'ratio_{arm}_lo']:.2f}, {r[f'ratio_{arm}_hi']:.2f}]"
            for arm in "ab"
        }
        block.append(
            f"  run-to-run / coin-flip variance   A {ratio['a']}   B {ratio['b']}   (1: runs differ only "
            f"by per-example coin flips)"
        )
    for question, name in (("test_set", "on this test set   "), ("distribution", "on the distribution")):
        block.append(
            f"  {name} {_interval(r, question)}  {r[f'{question}_verdict']}{_holm(r, question, made)}"
        )
    if r["points"] > 1:
        p = r["heterogeneity_p"]
        judged = (
            "no scale to judge by (runs that do not vary)"
            if np.isnan(p)
            else f"Welch F = {r['heterogeneity_f']:.2f}, p = {p:.3f}: "
            + (
                "the effect differs between grid points (an interaction)"
                if p < 1 - level
                else "no evidence that it differs between grid points"
            )
        )
        block.append(
            f"  per grid point  A - B from {_points(r['diff_min'])} to {_points(r['diff_max'])}; {judged}"
        )
    if "runs_test_set_1pt" in r:
        needed = {
            kind: "  ".join(f"{d:g}pt: {r[f'runs_{kind}_{d:g}pt']:.0f}" for d in DELTAS)
            for kind in ("test_set", "distribution")
        }
        per = "per arm" if r["points"] == 1 else "per arm and grid point"
        block.append(f"  runs {per} for 80% power, this test set:    {needed['test_set']}")
        block.append(
            f"  runs {per} for 80% power, the distribution: "
            + (
                needed["distribution"]
                if r["se_distribution_runs"] > 0
                else "no distribution-wise spread detected at this number of runs"
            )
        )
    return block
