"""A study's key tables as readable HTML pages for the Snakemake report (the parquet files stay the data),
and its overview page: what the study runs, from its config.

Columns are shown as stored, numbers to four significant digits, one row per line; long tables keep their
first `MAX_ROWS` rows and say how many there are, so a 60,000-run study still opens.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from chaosgrid.cells import format_value
from chaosgrid.store import write_atomically
from chaosgrid.studies import STUDY_KEYS, expand_study, study_axes

MAX_ROWS = 500
STYLE = """<style>
body { font-family: sans-serif; font-size: 13px; margin: 1em; }
table { border-collapse: collapse; }
th, td { border: 1px solid #ddd; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #f4f4f4; position: sticky; top: 0; }
tr:nth-child(even) td { background: #fafafa; }
</style>"""


def html_table(frame: pd.DataFrame, title: str, path: Path | str) -> None:
    """Write `frame` as one HTML page titled `title`, atomically."""
    shown = frame.head(MAX_ROWS)
    note = f"<p>{len(frame):,} rows" + (f"; the first {MAX_ROWS} shown" if len(frame) > MAX_ROWS else "") + "</p>"
    body = shown.to_html(index=False, float_format=lambda x: f"{x:.4g}", na_rep="", border=0)
    page = f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{title}</title>{STYLE}</head>" \
           f"<body><h3>{title}</h3>{note}{body}</body></html>"  # fmt: skip
    write_atomically(path, lambda tmp: Path(tmp).write_text(page, encoding="utf-8"))


def study_overview(name: str, study: dict) -> pd.DataFrame:
    """What a study runs, as (item, value) rows: runs, jobs, seeds, each axis with its values, the parameters
    it fixes, the evaluation sets and the variants, counted from the same grid expansion the workflow plans."""
    shards = expand_study(name, study)
    runs = sum(len(s.seed_indices) for s in shards)
    seeds = study.get("seeds", 1)
    rows = [("runs", f"{runs:,}"), ("shard jobs", f"{len(shards):,} ({runs // max(len(shards), 1):,} runs each)"),
            ("seeds per grid point", f"{seeds if isinstance(seeds, int) else len(seeds)}")]  # fmt: skip
    rows += [(f"axis {a}", ", ".join(map(format_value, study[a]))) for a in study_axes(study) if a != "variant"]
    rows += [(f"variant {v}", ", ".join(f"{k}={format_value(x)}" for k, x in spec.items()) or "(reference)")
             for v, spec in study.get("variants", {}).items()]  # fmt: skip
    fixed = {k: v for k, v in study.items() if k not in STUDY_KEYS and not isinstance(v, list)}
    rows += [(k, format_value(v)) for k, v in fixed.items()]
    evals = ["clean", *shards[0].shifts] if shards else ["clean"]
    severities = ", ".join(map(str, shards[0].severities)) if shards and shards[0].severities else "-"
    rows += [("evaluation sets", ", ".join(evals)), ("severities", severities)]
    return pd.DataFrame(rows, columns=["item", "value"])
