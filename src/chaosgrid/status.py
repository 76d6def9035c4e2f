"""Where a workflow stands, read from its results folder alone: shards done, and the shards whose log has
lines but whose tables do not exist yet (running, or failed), each with its log's last line.

A shard job writes a progress line to its log at least once a minute (`recipe.fit`); Snakemake's console
says only when a job finishes, so this is how to look inside hours-long shards (`chaosgrid status`).
"""

from __future__ import annotations

import time
from pathlib import Path

from chaosgrid.studies import parse_seed_text


def study_status(folder: Path, now: float | None = None) -> list[str]:
    """Lines for one study folder (results/<study>): what is done, then each unfinished shard's last line."""
    now = now or time.time()
    done = [p.relative_to(folder / "runs").with_suffix("").as_posix() for p in (folder / "runs").rglob("*.parquet")]
    runs = sum(len(parse_seed_text(key.rpartition("seeds~")[2]) or ()) for key in done)
    lines = [f"{folder.name}: {len(done)} shards done ({runs} runs)"]
    for log in sorted((folder / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime):
        key = log.relative_to(folder / "logs").with_suffix("").as_posix()
        shard = key.removesuffix(".evaluate")  # a shard that keeps weights: its evaluation job's log
        finished = (folder / "predictions" / f"{shard}.parquet").exists() if shard != key else key in done
        if "seeds~" not in key or finished:
            continue
        text = log.read_text(errors="replace").strip().splitlines()
        age = now - log.stat().st_mtime
        last = text[-1].strip() if text else "(nothing written yet)"
        lines.append(f"  {key}: log updated {_ago(age)} ago: {last}")
    return lines


def _ago(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 120 else f"{seconds / 60:.0f} min" if seconds < 7200 else f"{seconds / 3600:.1f} h"


def status(results: Path) -> list[str]:
    """study_status of every study with a runs or logs folder under `results`."""
    studies = sorted({p.parent for p in results.glob("*/runs")} | {p.parent for p in results.glob("*/logs")})
    return [line for folder in studies for line in study_status(folder)] or [f"no study results under {results}"]
