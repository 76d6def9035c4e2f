"""The torch device a job runs on: `--device` checked, and on a machine with several GPUs, one that no
other chaosgrid job holds."""

from __future__ import annotations

import os
from pathlib import Path

_CLAIMED: list = []  # the lock file of the GPU this process holds, open until it exits


def claim_gpu(count: int, lock_dir: Path | None = None) -> int:
    """The index of a GPU no other chaosgrid job on this machine holds: the first of `count` whose lock file
    (an exclusive flock, released when the process exits, however it ends) is free. With Snakemake's `gpu`
    resource capping jobs at the GPU count (profiles/gpus), one always is; if none is, the job shares one,
    chosen by its process id."""
    import fcntl
    import tempfile

    folder = Path(lock_dir or tempfile.gettempdir())
    for index in range(count):
        handle = open(folder / f"chaosgrid-cuda{index}.lock", "w")  # noqa: SIM115 (held open on purpose)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _CLAIMED.append(handle)
        return index
    return os.getpid() % count


def torch_device(name: str):
    """The torch device a checked --device names, or ValueError when torch cannot see that GPU. `auto`
    on a machine with several visible GPUs takes one that no other job holds (`claim_gpu`)."""
    import torch

    available = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if name == "auto":
        if available > 1:
            return torch.device(f"cuda:{claim_gpu(available)}")
        return torch.device("cuda" if available else "cpu")
    index = int(name.partition(":")[2] or 0)
    if name.startswith("cuda") and index >= available:
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        raise ValueError(
            f"{name!r}: torch {torch.__version__} ({build}) sees {available} CUDA device(s); "
            f"use --device cpu or auto"
        )
    return torch.device(name)
