"""Run the real workflow on tiny grids in a scratch folder (shared by the workflow and cluster tests)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))


def tiny_study(**overrides) -> dict:
    """A grid of 2 learning rates x 4 seeds in shards of 2, on digits: about a second per run."""
    study = {"width": 4, "epochs": 1, "seeds": 4, "shard_size": 2, "lr": [0.05, 0.1],
             "shifts": ["jpeg"], "severities": [1]}  # fmt: skip
    return {**study, **overrides}


def write_config(folder: Path, name: str = "config.yaml", **studies) -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump({"studies": studies}, sort_keys=False))  # keeps declared orders
    return path


def fail_once(marker: Path, fault: str = "CHAOSGRID_FAIL_ONCE") -> dict:
    """Environment under which the first shard job fails (tests/faults/sitecustomize.py), leaving `marker`;
    fault="CHAOSGRID_STOP_AFTER_SAVE": it gets SIGTERM after it has saved its state."""
    path = os.pathsep.join(
        p for p in (str(Path(__file__).parent / "faults"), os.environ.get("PYTHONPATH")) if p
    )
    return {"PYTHONPATH": path, fault: str(marker)}


def snakemake(workdir: Path, config: Path, *args: str, env: dict | None = None, check: bool = True):
    """`snakemake` on the repository's Snakefile, working in `workdir`; returns the CompletedProcess.

    The venv's folder is taken off PATH, as for a user who runs `.venv/bin/snakemake` without activating
    it: jobs must not need `chaosgrid` on PATH."""
    cmd = [SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(config), "--cores", "2", *args]  # fmt: skip
    venv = Path(sys.executable).parent
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p and Path(p) != venv)
    env = {**os.environ, "PATH": path, **(env or {})}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600, check=False)
    if check and done.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return done


def planned_jobs(output: str) -> dict[str, int]:
    """Job counts per rule from a dry-run's 'Job stats' table."""
    counts, in_table = {}, False
    for line in output.splitlines():
        parts = line.split()
        if line.startswith("job ") and "count" in line:
            in_table = True
        elif in_table and len(parts) == 2 and parts[1].isdigit():
            if parts[0] == "total":
                break
            counts[parts[0]] = int(parts[1])
    return counts


def rehearsed(configfile: Path, workdir: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """`chaosgrid rehearse CONFIG` run to its end in `workdir` (one core), checked to have ended in every
    study's report pages and figures."""
    from chaosgrid.plan.analyses import REPORT_PAGES, study_figures

    command = [sys.executable, "-m", "chaosgrid.cli", "rehearse", str(configfile), "--workdir", str(workdir),
               "--snakefile", str(REPO / "Snakefile"), "--cores", "1", "--", "--quiet", "all"]  # fmt: skip
    done = subprocess.run(
        command, cwd=workdir, env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    capped = yaml.safe_load((workdir / "config.yaml").read_text())
    for name, study in capped["studies"].items():
        folder = workdir / "results" / name
        assert all((folder / "report" / f"{page}.html").stat().st_size > 500 for page in REPORT_PAGES), name
        drawn = [folder / "figures" / f"{figure}.png" for figure in study_figures(study)]
        assert all(path.stat().st_size > 5_000 for path in drawn), [p.name for p in drawn if not p.exists()]
    return done
