"""Every paper config runs through the real workflow before anyone pays for a GPU (`chaosgrid rehearse`: the
paper's models, widths, batch sizes, optimizers, schedules, shifts and analyses; 2 seeds, about an epoch of
2 steps on stand-in CIFAR-10 files in the real formats), ends in its report, and each training job's
measured peak memory is what planning estimated. Minutes each: `make rehearse` (pytest -m paper)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from chaosgrid.plan.analyses import REPORT_PAGES, study_figures

REPO = Path(__file__).resolve().parents[1]
PAPERS = sorted(
    p for p in (REPO / "config").glob("*.yaml") if not p.stem.endswith("_small") and p.stem != "config"
)
MEMORY = re.compile(r"^  (\S+) (\S+): CPU ([\d,]+) / ([\d,]+) MB = ([\d.]+); ", re.MULTILINE)


@pytest.mark.paper
@pytest.mark.parametrize("configfile", PAPERS, ids=lambda p: p.stem)
def test_each_paper_config_rehearses_to_its_report_within_its_memory_estimate(configfile, tmp_path):
    command = [sys.executable, "-m", "chaosgrid.cli", "rehearse", str(configfile), "--workdir", str(tmp_path),
               "--snakefile", str(REPO / "Snakefile"), "--cores", "1", "--", "--quiet", "all"]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=1800, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "stand-in data under" in done.stdout and "cifar10: 256 training" in done.stdout
    capped = yaml.safe_load((tmp_path / "config.yaml").read_text())
    for name, study in capped["studies"].items():
        folder = tmp_path / "results" / name
        assert all((folder / "report" / f"{page}.html").stat().st_size > 500 for page in REPORT_PAGES), name
        drawn = [folder / "figures" / f"{figure}.png" for figure in study_figures(study)]
        assert all(path.stat().st_size > 5_000 for path in drawn), [p.name for p in drawn if not p.exists()]
    measured = MEMORY.findall(done.stdout)
    jobs = list((tmp_path / "results").glob("*/benchmarks/**/*.tsv"))
    assert len(measured) == len([j for j in jobs if "curves" not in j.parts]) > 0
    assert all(0.8 <= float(ratio) <= 1.25 for *_, ratio in measured), measured
