#!/usr/bin/env bash
# The first thing to run on any GPU machine (at most 8 minutes on one H100/H200-class GPU, each step capped):
# the tests marked `gpu` (the engines, bf16, channels-last, claiming GPUs, resume and evaluation from kept
# weights on CUDA), the throughput and runs-per-hour benchmarks at the README's GPU sizes, 12 grid points x 8
# seeds of a small cnn in one job (one stack) against 12 jobs, the cost of a saved shard state on the GPU, one summary beside airbench's published 3.83 s per run on an A100, then a paper
# config's rehearsal on the GPU (config/double_descent.yaml: ResNet-18 at width 64, 50 steps per epoch on
# stand-in CIFAR-10): each job's peak GPU memory beside planning's estimate, and the training throughput the
# GPU-hours estimate uses, written as the config block to paste (gpu.yaml).
# Everything lands in $OUT (default results/benchmarks/gpu_check): nvidia-smi.txt, tests.txt,
# throughput.csv, runs_per_hour.csv, grid_points.csv, resume_cost.csv, summary.csv, rehearsal.txt, gpu.yaml.
#
#   bash benchmarks/gpu_check.sh            # with this checkout's .venv, or a python3 that has torch
#
# PYTHONPATH=src runs chaosgrid from this checkout; only the rehearsal needs Snakemake (in .venv). Each step
# has its own time limit (together 8 minutes), so a hung step costs its limit, not the lease.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-results/benchmarks/gpu_check}
PY=${PY:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}
export PYTHONPATH=src${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
mkdir -p "$OUT"
status=0
step() { local limit=$1; shift; echo "== $*"; timeout "$limit" "$@" || { echo "== failed ($?): $*"; status=1; }; }

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
"$PY" -c "import torch; print(torch.__version__, torch.cuda.get_device_name(0))" | tee -a "$OUT/nvidia-smi.txt"
step 80 "$PY" -m pytest -q -m gpu -p no:cacheprovider tests/test_gpu.py 2>&1 | tee "$OUT/tests.txt"
step 70 "$PY" benchmarks/throughput.py --model fast --dataset synthetic50k --width 64 --batch-size 1024 \
    --ks 1,8,32,64 --bf16 --compile --device cuda --out "$OUT/throughput.csv"
step 90 "$PY" benchmarks/runs_per_hour.py --model fast --dataset synthetic50k --width 64 --batch-size 1024 \
    --epochs 10 --naive-max 2 --points 0 --out "$OUT/runs_per_hour.csv"
step 60 "$PY" benchmarks/runs_per_hour.py --ks '' --points 12 --out "$OUT/grid_points.csv"
step 20 "$PY" benchmarks/resume_cost.py --device cuda --out "$OUT/resume_cost.csv"
step 10 "$PY" - "$OUT" <<'PY'
"""summary.csv: the best measured seconds per 10-epoch fast-net run beside airbench94's 3.83 s on an A100."""
import sys
from pathlib import Path

import pandas as pd

out = Path(sys.argv[1])
rates = pd.read_csv(out / "runs_per_hour.csv")
columns = [c for c in rates.columns if c.endswith("_runs_per_hour")]
best = rates.melt(id_vars=["k"], value_vars=columns, var_name="how", value_name="runs_per_hour").nlargest(1, "runs_per_hour")
best["seconds_per_run"] = 3600 / best["runs_per_hour"]
best["airbench94_a100_seconds_per_run"] = 3.83
best["vs_airbench"] = best["airbench94_a100_seconds_per_run"] / best["seconds_per_run"]
best.to_csv(out / "summary.csv", index=False)
print(best.to_string(index=False))
PY
[ -d .venv/bin ] && export PATH=$PWD/.venv/bin:$PATH  # the workflow's jobs call `chaosgrid`
step 140 "$PY" -m chaosgrid.cli rehearse config/double_descent.yaml --workdir "$OUT/rehearsal" --steps 50 \
    --cores 4 -- --quiet 2>&1 | tee "$OUT/rehearsal.txt"
step 10 "$PY" - "$OUT" <<'PY'
"""gpu.yaml: this card as a config's `gpu` block, its throughput the rehearsal's median (FLOPs / seconds)."""
import re
import sys
from pathlib import Path

import torch

out = Path(sys.argv[1])
median = re.search(r"median throughput ([\d.]+) TFLOP/s", (out / "rehearsal.txt").read_text())
card = torch.cuda.get_device_properties(0)
block = f"gpu: {{name: {card.name!r}, memory_gb: {card.total_memory / 1e9:.0f}, tflops: {float(median[1]):.1f}}}\n"
(out / "gpu.yaml").write_text(block)
print(block, end="")
PY
exit $status
