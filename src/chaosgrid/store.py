"""Parquet tables: their schemas (declared once), atomic writes, and provenance.

- `runs`: one row per run: every cell parameter, the cell id, final train loss/accuracy, clean test
  accuracy, divergence, seconds, provenance.
- `predictions`: one row per run x evaluation set (clean, or a shift at a severity), holding that set's
  accuracy and fixed-length arrays over its examples: predicted class (uint8), true-class probability
  (float16) and correctness (bool). Analysis reads a runs x examples matrix straight from the list columns.
"""

from __future__ import annotations

import os
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from chaosgrid import __version__
from chaosgrid.grid import CELL_DEFAULTS, cell_id

if TYPE_CHECKING:
    from chaosgrid.train import Execution

_ARROW_TYPES = {bool: pa.bool_(), int: pa.int64(), float: pa.float64(), str: pa.string()}
CELL_FIELDS = [pa.field(name, _ARROW_TYPES[type(default)]) for name, default in CELL_DEFAULTS.items()]
PROVENANCE_FIELDS = [
    pa.field("chaosgrid_version", pa.string()),
    pa.field("git_commit", pa.string()),
    pa.field("torch_version", pa.string()),
    pa.field("device", pa.string()),
    pa.field("threads", pa.int32()),
    pa.field("engine", pa.string()),
    pa.field("channels_last", pa.bool_()),
    pa.field("compiled", pa.bool_()),
    pa.field("host", pa.string()),
]
RUNS_SCHEMA = pa.schema(
    [pa.field("cell_id", pa.string()), pa.field("shard", pa.string()), *CELL_FIELDS]
    + [
        pa.field("train_loss", pa.float64()),
        pa.field("train_acc", pa.float64()),
        pa.field("test_acc", pa.float64()),  # clean test set; shifted sets are in `predictions`
        pa.field("diverged", pa.bool_()),
        pa.field("diverged_step", pa.int64()),
        pa.field("wall_s", pa.float64()),
    ]
    + PROVENANCE_FIELDS
)
PREDICTIONS_SCHEMA = pa.schema(
    [
        pa.field("cell_id", pa.string()),
        pa.field("shift", pa.string()),  # "clean" or a shift name
        pa.field("severity", pa.int8()),  # 0 for clean and single-level sets
        pa.field("acc", pa.float64()),  # NaN for a diverged run
        pa.field("pred", pa.list_(pa.uint8())),
        pa.field("p_true", pa.list_(pa.float16())),
        pa.field("correct", pa.list_(pa.bool_())),  # parquet packs booleans to one bit each
    ]
)
COMPRESSION = "zstd"


def git_commit() -> str:
    """The commit of the chaosgrid checkout the code runs from, or 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def provenance(device: str, threads: int, execution: Execution) -> dict:
    """Where and how a shard ran (`execution` with its engine resolved)."""
    import torch

    return {
        "chaosgrid_version": __version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "device": device,
        "threads": threads,
        "engine": execution.engine,
        "channels_last": execution.channels_last,
        "compiled": execution.compile,
        "host": platform.node(),
    }


def runs_table(results: list, shard: str, prov: dict) -> pa.Table:
    rows = [
        {
            "cell_id": cell_id(r.cell),
            "shard": shard,
            **r.cell,
            "train_loss": r.train_loss,
            "train_acc": r.train_acc,
            "test_acc": r.evals["clean", 0].acc,
            "diverged": r.diverged_step >= 0,
            "diverged_step": r.diverged_step,
            "wall_s": r.wall_s,
            **prov,
        }
        for r in results
    ]
    return pa.Table.from_pylist(rows, schema=RUNS_SCHEMA)


def predictions_table(results: list) -> pa.Table:
    ids, shifts, severities, accs, preds, probs, correct = [], [], [], [], [], [], []
    for r in results:
        cid = cell_id(r.cell)
        for (shift, severity), e in r.evals.items():
            ids.append(cid)
            shifts.append(shift)
            severities.append(severity)
            accs.append(e.acc)
            preds.append(e.pred)
            probs.append(e.p_true)
            correct.append(e.correct)
    columns = [ids, shifts, severities, accs, _list_array(preds, pa.uint8()), _list_array(probs, pa.float16()),
               _list_array(correct, pa.bool_())]  # fmt: skip
    return pa.Table.from_arrays(columns, schema=PREDICTIONS_SCHEMA)


def _list_array(arrays: list[np.ndarray], value_type: pa.DataType) -> pa.ListArray:
    """A list column built from numpy arrays without a Python loop over their elements."""
    offsets = np.concatenate([[0], np.cumsum([len(a) for a in arrays])]).astype(np.int32)
    values = np.concatenate(arrays) if arrays else np.array([], dtype=value_type.to_pandas_dtype())
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=value_type))


def write_table(table: pa.Table, path: Path | str) -> None:
    """Write parquet to a temporary name in the target folder, then rename: a crash leaves no partial file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        pq.write_table(table, tmp, compression=COMPRESSION)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide results from collaborators
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def matrix(
    table: pa.Table, column: str = "pred", shift: str = "clean", severity: int = 0
) -> tuple[list[str], np.ndarray]:
    """(cell ids, runs x examples matrix of `column`) for one evaluation set of a predictions table."""
    rows = table.filter(pc.and_(pc.equal(table["shift"], shift), pc.equal(table["severity"], severity)))
    flat = rows[column].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return rows["cell_id"].to_pylist(), flat.reshape(rows.num_rows, -1)
