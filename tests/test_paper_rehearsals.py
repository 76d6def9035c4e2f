"""Every paper config runs through the real workflow before anyone pays for a GPU (`chaosgrid rehearse`: the
paper's models, widths, batch sizes, optimizers, schedules, shifts and analyses; 2 seeds, about an epoch of
2 steps on stand-in CIFAR-10 files in the real formats), ends in its report, and each training job's
measured peak memory is what planning estimated. Minutes each: `make rehearse` (pytest -m paper)."""

from __future__ import annotations

import re

import pytest
from workflow_helpers import REPO, rehearsed

PAPERS = sorted(
    p for p in (REPO / "config").glob("*.yaml") if not p.stem.endswith("_small") and p.stem != "config"
)
MEMORY = re.compile(r"^  (\S+) (\S+): CPU ([\d,]+) / ([\d,]+) MB = ([\d.]+); ", re.MULTILINE)


@pytest.mark.paper
@pytest.mark.parametrize("configfile", PAPERS, ids=lambda p: p.stem)
def test_each_paper_config_rehearses_to_its_report_within_its_memory_estimate(configfile, tmp_path):
    done = rehearsed(configfile, tmp_path)
    assert "stand-in data under" in done.stdout and re.search(r"cifar10: \d+ training", done.stdout)
    measured = MEMORY.findall(done.stdout)
    jobs = list((tmp_path / "results").glob("*/benchmarks/**/*.tsv"))
    assert len(measured) == len([j for j in jobs if "curves" not in j.parts]) > 0
    assert all(0.8 <= float(ratio) <= 1.25 for *_, ratio in measured), measured
