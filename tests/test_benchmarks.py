"""Smoke runs of the benchmarks: they run and print their tables (no timing is asserted)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize(
    "script, header",
    [
        ("throughput.py", "vmap+cl+bf16"),
        ("runs_per_hour.py", "job/naive"),
        ("dag_scaling.py", "peak MB"),
        ("storage.py", "B per run per eval set"),
        ("job_overhead.py", "projected paper shard"),
    ],
)
def test_benchmark_smoke(tmp_path, script, header):
    done = subprocess.run([sys.executable, BENCHMARKS / script, "--smoke", "--out", tmp_path / "out.csv"],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert header in done.stdout
    assert (tmp_path / "out.csv").read_text().count("\n") >= 2
