"""A study's pages in the Snakemake report: its results page (its question, headline numbers, main effects
and every figure with its caption, one page to read top to bottom), its overview (what it runs, from its
config), and its key tables as readable HTML (the parquet files stay the data; comparisons narrowed to what
a reader decides with).

Columns are shown as stored, numbers to four significant digits, one row per line; long tables keep their
first `MAX_ROWS` rows and say how many there are, so a 60,000-run study still opens.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import pandas as pd

from chaosgrid.analysis.compare import seedless_warning
from chaosgrid.cells import CELL_DEFAULTS, NOT_IN_STUDIES, format_value
from chaosgrid.evalsets import clean_rows
from chaosgrid.plan.blocks import STUDY_KEYS, study_axes
from chaosgrid.plan.studies import expand_study
from chaosgrid.store import write_atomically

MAX_ROWS = 500
STYLE = """<style>
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; position: sticky; top: 0; }
tr:nth-child(even) td { background: #fafafa; }
</style>"""


WRAP = "<style>td { white-space: normal; text-align: left; max-width: 70em; }</style>"


def html_table(frame: pd.DataFrame, title: str, path: Path | str, wrap: bool = False) -> None:
    """Write `frame` as one HTML page titled `title`, atomically; `wrap`: cells of text wrap (an overview)."""
    shown = frame.head(MAX_ROWS)
    note = (
        f"<p>{len(frame):,} rows"
        + (f"; the first {MAX_ROWS} shown" if len(frame) > MAX_ROWS else "")
        + "</p>"
    )
    body = shown.to_html(index=False, float_format=lambda x: f"{x:.4g}", na_rep="", border=0)
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>{STYLE}{WRAP * wrap}</head>"
        f"<body><h3>{title}</h3>{note}{body}</body></html>"
    )
    write_atomically(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))


def study_overview(name: str, study: dict, finished: list[str] | tuple = ()) -> pd.DataFrame:
    """What a study runs, as (item, value) rows: runs, jobs, seeds, each axis with its values, the parameters
    it fixes, the evaluation sets and the variants, counted from the same grid expansion the workflow plans
    (`finished`: the keys of its shards done, which a study that grew keeps)."""
    shards = expand_study(name, study, finished, pack=True)  # finished shards as they were made
    runs = sum(s.runs for s in shards)
    seeds = study.get("seeds", 1)
    sizes = sorted({s.runs for s in shards}) or [0]
    each = f"{sizes[0]:,}" if len(sizes) == 1 else f"{sizes[0]:,}-{sizes[-1]:,}"
    rows = [
        ("runs", f"{runs:,}"),
        ("shard jobs", f"{len(shards):,} ({each} runs each)"),
        ("seeds per grid point", f"{seeds if isinstance(seeds, int) else len(seeds)}"),
    ]
    rows += [
        (f"axis {a}", ", ".join(map(format_value, study[a]))) for a in study_axes(study) if a != "variant"
    ]
    rows += [
        (f"variant {v}", ", ".join(f"{k}={format_value(x)}" for k, x in spec.items()) or "(reference)")
        for v, spec in study.get("variants", {}).items()
    ]
    fixed = {k: v for k, v in study.items() if k not in STUDY_KEYS and not isinstance(v, list)}
    rows += [(k, shown_value(v)) for k, v in fixed.items()]
    if study.get("trainer"):  # the user's trainer trains the runs: chaosgrid's recipe defaults do not apply
        rows.append(
            ("every other parameter", "set by your trainer (chaosgrid's recipe defaults do not apply)")
        )
    else:
        rest = {
            k: v for k, v in CELL_DEFAULTS.items() if k not in study and k not in NOT_IN_STUDIES and v != ""
        }
        rows.append(
            (
                "every other parameter (chaosgrid's default)",
                ", ".join(f"{k} {format_value(v)}" for k, v in rest.items()),
            )
        )
    evals = ["clean", *shards[0].shifts] if shards else ["clean"]
    severities = ", ".join(map(str, shards[0].severities)) if shards and shards[0].severities else "-"
    rows += [("evaluation sets", ", ".join(evals)), ("severities", severities)]
    return pd.DataFrame(rows, columns=["item", "value"])


def shown_value(value: object) -> str:
    """A fixed parameter as a reader wants it: a user's .npz dataset by its file name, not as a mapping with
    its path."""
    text = f"npz:{value.get('npz')}" if isinstance(value, dict) else str(value)
    return (
        f"{Path(text.removeprefix('npz:')).name} (your .npz file)"
        if text.startswith("npz:")
        else format_value(value)
    )


def narrow_comparisons(frame: pd.DataFrame) -> pd.DataFrame:
    """The comparisons table as a reader reads it: evaluation set, pair, where, A - B and its interval on this
    test set in points, the verdicts (its own, and Holm's over its evaluation set), runs per arm for 0.5
    points; main effects (pooled over the other axes) first within each set."""
    if frame.empty:
        return frame
    pt = lambda x: f"{100 * x:+.2f}"
    sets = frame["shift"].where(frame["severity"] == 0, frame["shift"] + ":" + frame["severity"].astype(str))
    order = {name: i for i, name in enumerate(dict.fromkeys(sets))}  # as evaluated: clean first
    rows = frame.assign(_set=sets.map(order), _point=~frame["at"].str.startswith("pooled"))
    rows = rows.sort_values(["_set", "_point"], kind="stable")
    sets = sets.loc[rows.index]
    return pd.DataFrame(
        {
            "evaluation set": sets,
            "comparison": rows["axis"] + " " + rows["a"] + " vs " + rows["b"],
            "at": rows["at"],
            "A - B (points)": rows["diff"].map(pt),
            "95% interval": "[" + rows["test_set_lo"].map(pt) + ", " + rows["test_set_hi"].map(pt) + "]",
            "verdict": rows["test_set_verdict"],
            "Holm verdict": rows["test_set_verdict_holm"],
            "runs per arm for 0.5 points": rows["runs_test_set_0.5pt"].map(
                lambda r: "> 100,000" if r == float("inf") else f"{r:.0f}"
            ),
        }
    )


def caption_html(text: str, study: str) -> str:
    """A figure's report caption (workflow/report/<figure>.rst: a Jinja template of reStructuredText) as HTML."""
    text = re.sub(r"\{\{\s*snakemake\.wildcards\.study\s*\}\}", study, text)
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", text)
    return re.sub(r"``?(.+?)``?", r"<code>\1</code>", text)


def headline(
    summary: pd.DataFrame,
    variance: pd.DataFrame,
    comparisons: pd.DataFrame,
    churn: pd.DataFrame,
    axes: list[str],
) -> list[str]:
    """The study's numbers a reader wants first, as sentences: runs, grid points where the seeds changed
    nothing (a warning), the best and worst grid point on the clean test set, how much runs vary and how much
    of it per-example coin flips explain, and each main effect."""

    clean = clean_rows(summary)
    point = lambda row: ", ".join(f"{a}={format_value(row[a])}" for a in axes) or "the study"
    diverged = int((clean["n_runs"] - clean["n_converged"]).sum())
    lines = [f"{int(clean['n_runs'].sum()):,} runs at {len(clean):,} grid points; {diverged:,} diverged."]
    if "seeds_had_no_effect" in churn:
        seedless = churn[churn["seeds_had_no_effect"].astype("boolean").fillna(False)]
        lines += seedless_warning([point(r) for _, r in seedless.iterrows()])
    if clean["mean_acc"].notna().any():
        best, worst = clean.loc[clean["mean_acc"].idxmax()], clean.loc[clean["mean_acc"].idxmin()]
        acc = lambda r: (
            f"{100 * r['mean_acc']:.2f}% [{100 * r['mean_acc_lo']:.2f}, {100 * r['mean_acc_hi']:.2f}]"
        )
        lines.append(
            f"Clean test accuracy: highest at {point(best)}, {acc(best)}; lowest at {point(worst)}, "
            f"{acc(worst)} (mean over seeds, 95% interval)."
        )
    points = clean_rows(variance) if not variance.empty else variance
    if len(points):
        holds = ((points["ratio_lo"] <= 1) & (points["ratio_hi"] >= 1)).sum()
        lines.append(
            f"Run-to-run std of clean accuracy: median {100 * points['std_acc'].median():.2f} points over "
            f"grid points (per-example coin flips alone: {100 * points['std_binomial'].median():.2f}); at "
            f"{holds} of {len(points)} points the runs differ by no more than coin flips explain (the "
            f"variance ratio's 95% interval holds 1)."
        )
    clean_comparisons = (
        comparisons[(comparisons["shift"] == "clean")] if not comparisons.empty else comparisons
    )
    main = (
        clean_comparisons[clean_comparisons["at"].str.startswith("pooled")]
        if len(clean_comparisons)
        else clean_comparisons
    )
    for _, r in (main if len(main) else clean_comparisons.head(6)).iterrows():
        where = f" ({r['at']})" if r["at"] else ""
        lines.append(
            f"{r['axis']} {r['a']} vs {r['b']}{where}: A - B {100 * r['diff']:+.2f} points "
            f"[{100 * r['test_set_lo']:+.2f}, {100 * r['test_set_hi']:+.2f}], {r['test_set_verdict_holm']} "
            f"(Holm, over {int(r['comparisons'])} comparison{'s' * (r['comparisons'] != 1)}: every one of "
            f"this evaluation set, pooled and per grid point; `chaosgrid compare --axis` adjusts over those "
            f"it prints)."
        )
    return lines


def results_page(
    study: str, question: str, lines: list[str], figures: list[tuple[str, Path, str]], path: Path | str
) -> None:
    """One page to read top to bottom: the study's question, its headline numbers, then every figure with its
    caption inline (each PNG embedded, so the page stands alone in the report)."""
    parts = [
        f"<h2>{html.escape(study)}</h2><p><b>{html.escape(question)}</b></p><ul>",
        *(f"<li>{html.escape(line)}</li>" for line in lines),
        "</ul>",
    ]
    for name, png, caption in figures:
        data = base64.b64encode(Path(png).read_bytes()).decode()
        parts.append(
            f"<h4>{html.escape(name.replace('_', ' '))}</h4><img style='max-width:100%' "
            f"src='data:image/png;base64,{data}'><p style='max-width:60em'>{caption}</p>"
        )
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(study)}: results</title>{STYLE}"
        f"</head><body>{''.join(parts)}</body></html>"
    )
    write_atomically(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))


def question_of(study: dict, axes: list[str]) -> str:
    """The study's `question`, or one its axes ask."""
    if study.get("question"):
        return str(study["question"])
    if not axes:
        return "How much does clean test accuracy vary from seed to seed, and why?"
    return (
        f"Does clean test accuracy change along {', '.join(axes)} by more than runs vary from seed to seed, "
        f"and how much of that variation is per-example coin flips?"
    )
