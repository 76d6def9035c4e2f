"""Where a workflow stands, read from its results folder (and, given its config, of how many planned): shards
done, and the shards whose log has lines but whose tables do not exist yet, running or failed (a log that
ends in an error), each with its log's last line.

A shard job writes a progress line to its log at least once a minute (`recipe.fit`); Snakemake's console
says only when a job finishes, so this is how to look inside hours-long shards (`chaosgrid status`).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from chaosgrid.plan.studies import key_runs
from chaosgrid.plan.workflow import Plan

# A log's last line when its job failed: click's "Error: ..." or an exception a traceback ends in.
FAILED = re.compile(r"Error: .*|[A-Za-z_][\w.]*(Error|Exception|Interrupt)(: .*)?|Killed.*")


def done_shards(folder: Path) -> list[str]:
    return [
        p.relative_to(folder / "runs").with_suffix("").as_posix()
        for p in (folder / "runs").rglob("*.parquet")
    ]


def runs_of(keys: list[str]) -> int:
    return sum(key_runs(key) for key in keys)


def study_status(folder: Path, planned: list[str] | None = None, now: float | None = None) -> list[str]:
    """Lines for one study folder (results/<study>): what is done (of the `planned` shard keys, when known),
    then each unfinished shard's last line, failed ones marked."""
    now = now or time.time()
    done = done_shards(folder)
    if planned is None:
        lines = [f"{folder.name}: {len(done)} shards done ({runs_of(done)} runs)"]
    else:
        lines = [
            f"{folder.name}: {len(done)} of {len(planned)} shards done ({runs_of(done)} of {runs_of(planned)} runs)"
        ]
    failed = 0
    for log in sorted((folder / "logs").rglob("*.log"), key=lambda p: p.stat().st_mtime):
        key = log.relative_to(folder / "logs").with_suffix("").as_posix()
        shard = key.removesuffix(".evaluate")  # a shard that keeps weights: its evaluation job's log
        finished = (folder / "predictions" / f"{shard}.parquet").exists() if shard != key else key in done
        if "seeds~" not in key or finished:
            continue
        text = log.read_text(errors="replace").strip().splitlines()
        age = now - log.stat().st_mtime
        last = text[-1].strip() if text else "(nothing written yet)"
        stopped = bool(FAILED.fullmatch(last))
        failed += stopped
        lines.append(f"  {key}: {'FAILED, log' if stopped else 'log'} updated {_ago(age)} ago: {last}")
    if failed:
        lines[0] += f"; {failed} failed (their logs say why; a rerun retries them)"
    return lines


def _ago(seconds: float) -> str:
    return (
        f"{seconds:.0f} s"
        if seconds < 120
        else f"{seconds / 60:.0f} min"
        if seconds < 7200
        else f"{seconds / 3600:.1f} h"
    )


def status(results: Path, plan: Plan | None = None) -> list[str]:
    """study_status of every study with a runs or logs folder under `results`, or of every study of `plan`
    (the config's plan, made as the workflow makes it: the shards planned, with those a grown study kept)."""
    if plan is not None:
        return [
            line
            for name in plan.studies
            for line in study_status(results / name, list(plan.shards.study(name)))
        ]
    studies = sorted({p.parent for p in results.glob("*/runs")} | {p.parent for p in results.glob("*/logs")})
    return [line for folder in studies for line in study_status(folder)] or [
        f"no study results under {results}"
    ]
