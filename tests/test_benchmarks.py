"""Smoke runs of the benchmarks: they run and print their tables (no timing is asserted)."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from chaosgrid import footprint

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.mark.parametrize(
    "script, header",
    [
        ("throughput.py", "vmap+cl+bf16"),
        ("runs_per_hour.py", "job/naive"),
        ("dag_scaling.py", "peak MB"),
        ("storage.py", "B per run per eval set"),
        ("job_overhead.py", "projected paper shard"),
        ("utilization.py", "of peak"),
        ("own_model.py", "own / built-in"),
        ("resume_cost.py", "save_s"),
        ("memory.py", "estimate/measured"),
    ],
)
def test_benchmark_smoke(tmp_path, script, header):
    done = subprocess.run([sys.executable, BENCHMARKS / script, "--smoke", "--out", tmp_path / "out.csv"],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert header in done.stdout
    assert (tmp_path / "out.csv").read_text().count("\n") >= 2


def test_utilization_counts_flops_as_arithmetic_says():
    """The FLOPs planning and the utilization benchmark count (chaosgrid.footprint, from the models' size
    table): an MLP's forward is 2 FLOPs per weight; the fast net at width 64 is ~0.29 GFLOP per forward pass,
    so a 10-epoch CIFAR-10 run of chaos_perturb is ~0.44 PFLOP with its evaluation."""
    spec = importlib.util.spec_from_file_location("utilization", BENCHMARKS / "utilization.py")
    utilization = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utilization)
    hidden = 16 * 4
    assert footprint.model_sizes("mlp", (1, 8, 8), 10, 4)[2] == 2 * (
        64 * hidden + hidden * hidden + hidden * 10
    )
    assert 0.29e9 < footprint.model_sizes("fast", (3, 32, 32), 10, 64)[2] < 0.295e9
    perturb = next(r for r in utilization.projections() if r["study"] == "chaos_perturb")
    assert 0.43 < perturb["pflop_per_run"] < 0.45 and 7_900 < perturb["H100 SXM runs/h at 100%"] < 8_200
