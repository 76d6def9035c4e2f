"""How many runs a shard job holds where its study does not say (`shard_size`): about `job_minutes` of work,
so that jobs follow compute rather than run count (a million cheap runs make thousands of jobs, not a
hundred thousand; a few expensive ones still make one job each).

A run's time is estimated from the footprint (its FLOPs at the device's speed, plus a fixed cost per
training step that dominates small nets). Sizes are 8 seed indices times a power of two, so a shard's blocks
(seeds 0-63, 64-127, ...) change only when an estimate changes by a factor of two, and more seeds add blocks
without renaming finished ones. Memory bounds what a job trains at once, not the shard: its runs train in
stacks that fit the job's `mem_mb` or the GPU's memory (`stack`).
"""

from __future__ import annotations

from dataclasses import dataclass

from chaosgrid import checkpoints as checkpoints_
from chaosgrid.footprint import GPU_USABLE, run_flops, stack_size, workload
from chaosgrid.plan.seeds import SHARD_SIZE
from chaosgrid.plan.specs import Shard

# A job's resources unless its study's `resources` block says otherwise.
RESOURCE_DEFAULTS = {"threads": 1, "mem_mb": 2000, "runtime": 30, "gpus": 0}
# Training speed of one CPU thread, TFLOP/s as torch's FlopCounterMode counts: 0.09-0.12 measured by the
# paper configs' rehearsals on this 2-core machine (ResNet-18, VGG-16, the fast net; docs/studies.md).
CPU_TFLOPS = 0.1
# The fixed cost of one training step of one run, seconds (dispatch, optimizer, bookkeeping, its share of the
# evaluations): what a small net's time is made of. benchmarks/runs_per_hour.py (cnn width 8 on digits, 46
# steps and 13 evaluation sets per run, 1 thread): 5.4-5.7 ms a step, in the loop and under vmap at K = 64.
STEP_SECONDS = 0.005
LARGEST = SHARD_SIZE * 2**7  # 1,024 runs


def on_gpu(resources: dict, device: str) -> bool:
    """A study's jobs train on a GPU: they ask for one (`resources: {gpus: N}`), or the config's device is."""
    return resources.get("gpus", 0) > 0 or str(device).startswith("cuda")


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
    load = workload(cell, shifts, severities)
    if load is None:
        return None
    _, _, steps = checkpoints_.training_steps(cell, load.trained)
    return run_flops(cell, load, checkpoints) / (tflops * 1e12) + steps * STEP_SECONDS


def shard_size(
    cell: dict, shifts, severities, checkpoints: str, threads: int, speed: Speed, on_gpu: bool
) -> int:
    """The runs of a grid point's shards: the largest SHARD_SIZE * 2^j (at most LARGEST) whose estimated time
    fits `speed.job_minutes` (what the job holds at once is `stack`'s); SHARD_SIZE for a model or dataset
    the footprint does not know."""
    tflops = speed.gpu["tflops"] if on_gpu else CPU_TFLOPS * threads
    seconds = run_seconds(cell, tflops, shifts, severities, checkpoints)
    if seconds is None:
        return SHARD_SIZE
    size = SHARD_SIZE
    while size < LARGEST and 2 * size * seconds <= 60 * speed.job_minutes:
        size *= 2
    return size


def stack(shard: Shard, resources: dict, speed: Speed, on_gpu: bool) -> int:
    """How many of the shard's runs its job trains at once (`Shard.stack`): 0 (all) where they fit its memory
    together (the job's mem_mb, or the GPU's usable memory), else the most that do."""
    limit = (
        speed.gpu["memory_gb"] * 1e3 * GPU_USABLE
        if on_gpu
        else resources.get("mem_mb", RESOURCE_DEFAULTS["mem_mb"])
    )
    trained = shard.training()
    found = stack_size(
        shard.base,
        shard.runs,
        limit,
        shifts=trained.shifts,
        severities=trained.severities,
        checkpoints=shard.checkpoints,
        weights=shard.weights,
        engine=speed.engine,
        on_gpu=on_gpu,
    )
    return found or 0
