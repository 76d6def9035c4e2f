"""How many runs a shard job holds where its study does not say (`shard_size`): about `job_minutes` of work,
so that jobs follow compute rather than run count (a million cheap runs make thousands of jobs, not a
hundred thousand; a few expensive ones still make one job each).

A run's time is estimated from the footprint (its FLOPs at the device's speed, plus a fixed cost per
training step that dominates small nets), and a shard also stays within its job's memory (`mem_mb`, or the
GPU's). Sizes are 8 seed indices times a power of two, so a shard's blocks (seeds 0-63, 64-127, ...) change
only when an estimate changes by a factor of two, and more seeds add blocks without renaming finished ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosgrid import checkpoints as checkpoints_
from chaosgrid.footprint import flops, gpu_fit, memory_mb, workload
from chaosgrid.plan.seeds import SHARD_SIZE

# A job's resources unless its study's `resources` block says otherwise.
RESOURCE_DEFAULTS = {"threads": 1, "mem_mb": 2000, "runtime": 30, "gpus": 0}
# Training speed of one CPU thread, TFLOP/s as torch's FlopCounterMode counts: 0.09-0.12 measured by the
# paper configs' rehearsals on this 2-core machine (ResNet-18, VGG-16, the fast net; docs/studies.md).
CPU_TFLOPS = 0.1
# The fixed cost of one training step of one run, seconds (dispatch, optimizer, bookkeeping): what a small
# net's time is made of. Measured with benchmarks/runs_per_hour.py (cnn width 8 on digits).
STEP_SECONDS = 0.004
LARGEST = SHARD_SIZE * 2**7  # 1,024 runs


@dataclass(frozen=True)
class Speed:
    """What sizes a shard: the work a job should carry, how fast the device does it, and its memory."""

    job_minutes: float
    device: str  # the config's `device`: a study trains on a GPU when it is cuda or asks for gpus
    engine: str
    gpu: dict  # the config's `gpu`: name, memory_gb, tflops

    @classmethod
    def of(cls, config: dict) -> Speed:
        return cls(config["job_minutes"], config["device"], config["execution"]["engine"], config["gpu"])


def run_seconds(
    cell: dict, tflops: float, shifts=(), severities=(), checkpoints: str = "final"
) -> float | None:
    """A run's estimated seconds: its FLOPs (training and evaluation) at `tflops`, plus STEP_SECONDS a step.
    None for a model or dataset the footprint does not know."""
    load, work = workload(cell, shifts, severities), flops(cell, shifts, severities, checkpoints)
    if load is None or work is None:
        return None
    _, _, steps = checkpoints_.training_steps(cell, load.trained)
    return work / (tflops * 1e12) + steps * STEP_SECONDS


def shard_size(shard_like: dict, resources: dict, speed: Speed, on_gpu: bool) -> int:
    """The runs of a grid point's shards: the largest SHARD_SIZE * 2^j (at most LARGEST) whose estimated time
    fits `speed.job_minutes` and whose memory fits the job's; SHARD_SIZE for a model or dataset the footprint
    does not know. `shard_like`: the point's cell and what its shards evaluate and keep (`base`, `shifts`,
    `severities`, `checkpoints`, `weights`)."""
    cell, sets = shard_like["base"], (shard_like["shifts"], shard_like["severities"])
    threads = resources.get("threads", RESOURCE_DEFAULTS["threads"])
    tflops = speed.gpu["tflops"] if on_gpu else CPU_TFLOPS * threads
    seconds = run_seconds(cell, tflops, *sets, shard_like["checkpoints"])
    if seconds is None:
        return SHARD_SIZE
    kept = {"checkpoints": shard_like["checkpoints"], "weights": shard_like["weights"]}
    fit = gpu_fit(cell, 1, speed.gpu["memory_gb"], shifts=sets[0], severities=sets[1], **kept)
    limit = resources.get("mem_mb", RESOURCE_DEFAULTS["mem_mb"])

    def fits(runs: int) -> bool:
        if on_gpu:
            return fit is not None and runs <= fit[1]
        return memory_mb(cell, runs, *sets, engine=speed.engine, **kept)["mb"] <= limit

    size = SHARD_SIZE
    while size < LARGEST and 2 * size * seconds <= 60 * speed.job_minutes and fits(2 * size):
        size *= 2
    return size
