"""A study's key tables as readable HTML pages for the Snakemake report (the parquet files stay the data).

Columns are shown as stored, numbers to four significant digits, one row per line; long tables keep their
first `MAX_ROWS` rows and say how many there are, so a 60,000-run study still opens.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from chaosgrid.store import write_atomically

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
