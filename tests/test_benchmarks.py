"""Smoke runs of the benchmarks: they run and print their tables (no timing is asserted)."""

import importlib.util
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
    """An MLP's forward is 2 FLOPs per weight; the fast net at width 64 is ~0.85 GFLOP per training image and a
    10-epoch CIFAR-10 run ~0.42 PFLOP (the figures the speed issue quotes)."""
    spec = importlib.util.spec_from_file_location("utilization", BENCHMARKS / "utilization.py")
    utilization = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(utilization)
    hidden = 16 * 4
    train, forward = utilization.flops_per_image("mlp", 4, (1, 8, 8))
    assert forward == 2 * (64 * hidden + hidden * hidden + hidden * 10)
    assert 2 * forward < train <= 3 * forward  # backward: weight grads, and input grads past the first layer
    fast_train, _ = utilization.flops_per_image("fast", 64, (3, 32, 32))
    assert 0.84e9 < fast_train < 0.86e9
    perturb = next(r for r in utilization.projections() if r["study"] == "chaos_perturb")
    assert 0.42 < perturb["pflop_per_run"] < 0.43 and 8_300 < perturb["H100 SXM runs/h at 100%"] < 8_450
