"""Parquet tables: their schemas (declared once), atomic writes, and provenance.

- `runs`: one row per run: every cell parameter, the cell id, final train loss/accuracy, clean test
  accuracy, divergence, seconds, provenance.
- `predictions`: one row per run x checkpoint x evaluation set (clean, or a shift at a severity), holding
  that set's accuracy and fixed-length arrays over its examples: predicted class (uint8), true-class
  probability (float16) and correctness (bool), and where a study asks (`probabilities`) every class's
  probability (float16, examples x classes flattened) and the true classes (null otherwise). Analysis reads a runs x examples
  matrix straight from the list columns; `final` marks the last checkpoint, the only one unless a study asks
  for more.
- `history`: one row per run x epoch: training loss and accuracy over the epoch's batches, and the current lr.
- weights (`write_weights`): a torch file of state dicts by run and checkpoint, only where a study keeps
  them or another study starts from them.
"""

from __future__ import annotations

import glob
import os
import pickle
import platform
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from chaosgrid import __version__, checkpoints
from chaosgrid.cells import CELL_DEFAULTS, cell_id

if TYPE_CHECKING:
    from chaosgrid.evaluation import RunResult

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
        pa.field("steps", pa.int64()),  # optimizer steps taken
        pa.field("clipped", pa.float64()),  # fraction of steps whose gradient was clipped (grad_clip)
        pa.field("wall_s", pa.float64()),
    ]
    + PROVENANCE_FIELDS
)
PREDICTIONS_SCHEMA = pa.schema(
    [
        pa.field("cell_id", pa.string()),
        pa.field("step", pa.int64()),  # the checkpoint: optimizer steps taken when the predictions were made
        pa.field("final", pa.bool_()),  # the run's last checkpoint
        pa.field("shift", pa.string()),  # "clean" or a shift name
        pa.field("severity", pa.int8()),  # 0 for clean and single-level sets
        pa.field("acc", pa.float64()),  # NaN for a diverged run
        pa.field("pred", pa.list_(pa.uint8())),
        pa.field("p_true", pa.list_(pa.float16())),
        pa.field("correct", pa.list_(pa.bool_())),  # parquet packs booleans to one bit each
        pa.field("probs", pa.list_(pa.float16())),  # example-major (n x classes); null unless kept
        pa.field(
            "labels", pa.list_(pa.uint8())
        ),  # the true classes, beside probs (what ensembles score against)
    ]
)
HISTORY_SCHEMA = pa.schema(
    [
        pa.field("cell_id", pa.string()),
        pa.field("epoch", pa.float64()),  # epochs done (fractional for the last, partial one)
        pa.field("step", pa.int64()),
        pa.field(
            "current_lr", pa.float64()
        ),  # the scheduled lr of the epoch's last step (not the cell's peak `lr`)
        pa.field("train_loss", pa.float64()),  # mean over the epoch's batches, as trained
        pa.field("train_acc", pa.float64()),
    ]
)
COMPRESSION = "zstd"


def git_commit() -> str:
    """The commit of the chaosgrid checkout the code runs from, or 'unknown' outside a git checkout."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def provenance(device: str, threads: int, execution: dict) -> dict:
    """Where and how a shard ran: `execution` is the resolved Execution's own columns."""
    import torch

    return {
        "chaosgrid_version": __version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "device": device,
        "threads": threads,
        **execution,
        "host": platform.node(),
    }


def runs_table(results: list[RunResult], shard: str, prov: dict) -> pa.Table:
    """One row per run: every cell parameter (defaults included), the study's own keys (a trainer's) after
    them, outcome, provenance."""
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
            "steps": r.steps,
            "clipped": r.clipped,
            "wall_s": r.wall_s,
            **prov,
        }
        for r in results
    ]
    own = [k for k in results[0].cell if k not in CELL_DEFAULTS] if results else []
    schema = RUNS_SCHEMA
    for i, key in enumerate(own):
        schema = schema.insert(
            2 + len(CELL_FIELDS) + i, pa.field(key, _ARROW_TYPES[type(results[0].cell[key])])
        )
    return pa.Table.from_pylist(rows, schema=schema)


def parameter_columns(columns: list[str]) -> list[str]:
    """The columns of a runs table that describe a run: every cell parameter, then the study's own keys."""
    return [*CELL_DEFAULTS, *(c for c in columns if c not in RUNS_SCHEMA.names)]


def predictions_table(results: list[RunResult]) -> pa.Table:
    """One row per run x checkpoint x evaluation set, per-example arrays as list columns."""
    return evaluations_table(
        (cell_id(r.cell), step, step == r.steps, evals)
        for r in results
        for step, evals in [*sorted(r.checkpoints.items()), (r.steps, r.evals)]
    )


def evaluations_table(evaluations) -> pa.Table:
    """A predictions table from (cell id, step, final, {evaluation set: EvalResult}) tuples."""
    rows: dict[str, list] = {name: [] for name in PREDICTIONS_SCHEMA.names}
    for cid, step, final, evals in evaluations:
        for (shift, severity), e in evals.items():
            probs, labels = (None, None) if e.probs is None else (e.probs.reshape(-1), e.labels)
            values = (cid, step, final, shift, severity, e.acc, e.pred, e.p_true, e.correct, probs, labels)
            for name, value in zip(PREDICTIONS_SCHEMA.names, values, strict=True):
                rows[name].append(value)
    arrays = {
        name: _list_array(rows[name], PREDICTIONS_SCHEMA.field(name).type.value_type)
        for name in ("pred", "p_true", "correct", "probs", "labels")
    }
    return pa.Table.from_arrays(
        [arrays.get(n, rows[n]) for n in PREDICTIONS_SCHEMA.names], schema=PREDICTIONS_SCHEMA
    )


def history_table(results: list[RunResult]) -> pa.Table:
    rows = [{"cell_id": cell_id(r.cell), **h} for r in results for h in r.history]
    return pa.Table.from_pylist(rows, schema=HISTORY_SCHEMA)


def _list_array(arrays: list[np.ndarray | None], value_type: pa.DataType) -> pa.ListArray:
    """A list column built from numpy arrays without a Python loop over their elements (None: a null row)."""
    offsets = np.concatenate([[0], np.cumsum([0 if a is None else len(a) for a in arrays])]).astype(np.int32)
    present = [a for a in arrays if a is not None]
    values = np.concatenate(present) if present else np.array([], dtype=value_type.to_pandas_dtype())
    mask = pa.array([a is None for a in arrays]) if len(present) < len(arrays) else None
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(values, type=value_type), mask=mask)


def write_atomically(path: Path | str, write) -> None:
    """Call write(temporary path) in the target folder, then rename: a crash leaves no partial file (and
    SIGTERM, which SLURM sends first, none either: the CLI turns it into an exit that runs this cleanup). The
    writer's own error is what surfaces: a writer that removed its temporary file before failing (pyarrow
    does, on a full disk) must not turn ENOSPC into a FileNotFoundError about the temporary name. A
    temporary file of the same target that a killed writer left (SIGKILL runs no cleanup) is removed first:
    one job writes a target at a time, and the one that was killed is being redone."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0600 would hide results from collaborators
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_table(table: pa.Table, path: Path | str) -> None:
    write_atomically(path, lambda tmp: pq.write_table(table, tmp, compression=COMPRESSION))


def write_weights(
    results: list[RunResult], seed_indices: list[int], path: Path | str, parameters: list[str]
) -> int:
    """Save every kept checkpoint's state dicts, keyed by run (cell id, seed index) and step, with each run's
    epochs and steps (to find a checkpoint by epoch) and the names of the trainable parameters (what weight
    distances compare; the rest are buffers); returns bytes."""
    import torch

    runs = [
        {
            "cell_id": cell_id(r.cell),
            "seed_index": i,
            "epochs": r.cell["epochs"],
            "steps": r.steps,
            "weights": r.weights,
        }
        for r, i in zip(results, seed_indices, strict=True)
    ]
    write_atomically(path, lambda tmp: torch.save({"format": 2, "parameters": parameters, "runs": runs}, tmp))
    return Path(path).stat().st_size


def load_torch_file(path: Path | str, remedy: str, **options) -> dict:
    """torch.load of a file chaosgrid wrote, with a truncated or corrupt one reported by its path and what to
    do (torch's own message names neither)."""
    import torch

    try:
        return torch.load(path, **{"weights_only": True, **options})
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        if isinstance(err, pickle.UnpicklingError) and "unsupported global" in str(err).lower():
            raise ValueError(
                f"{path} holds objects other than tensors and plain values, which chaosgrid never "
                f"writes: not loaded (unpickling it could run code); {remedy}"
            ) from err
        raise ValueError(
            f"{path} is truncated or corrupt (torch.load: {type(err).__name__}): {remedy}"
        ) from err


def read_weights(path: Path | str) -> dict:
    """A weights file: {"parameters": names, "runs": {seed index: {"epochs", "steps", "weights": {step: state}}}}."""
    content = load_torch_file(path, "delete it to have its shard re-run", map_location="cpu")
    if content.get("format") != 2:
        raise ValueError(f"{path} is a weights file of an older format: delete it to have its shard re-run")
    return {"parameters": content["parameters"], "runs": {run["seed_index"]: run for run in content["runs"]}}


def write_shard(
    results: list[RunResult], shard, paths: dict[str, str | None], prov: dict, parameters: list[str]
) -> list[str]:
    """Write a shard's files (`paths` by kind: weights, history, predictions, runs; None: not asked for), each
    atomically, the runs table last: its presence means the shard is done. Returns the paths written."""
    written = []
    if shard.weights:
        size = write_weights(results, list(shard.seed_indices), paths["weights"], parameters)
        print(f"weights: {size / len(results) / 1e6:.2f} MB per run")
        written.append(paths["weights"])
    if paths.get("history"):
        write_table(history_table(results), paths["history"])
        written.append(paths["history"])
    write_table(predictions_table(results), paths["predictions"])
    write_table(runs_table(results, shard.key, prov), paths["runs"])
    return [*written, paths["predictions"], paths["runs"]]


def starting_weights(path: Path | str, seed_indices: list[int], epoch: float = 0.0) -> list[dict]:
    """The state dict of each seed index's run at `epoch` (0: final) in a weights file: where continuing runs
    start."""
    runs = read_weights(path)["runs"]
    missing = sorted(set(seed_indices) - set(runs))
    if missing:
        raise FileNotFoundError(f"{path} holds no run with seed index {missing[0]}")
    try:
        return [runs[i]["weights"][checkpoints.step_at(runs[i], epoch)] for i in seed_indices]
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def matrix(
    table: pa.Table, column: str = "pred", shift: str = "clean", severity: int = 0
) -> tuple[list[str], np.ndarray]:
    """(cell ids, runs x examples matrix of `column`) for one evaluation set of a predictions table."""
    rows = table.filter(pc.and_(pc.equal(table["shift"], shift), pc.equal(table["severity"], severity)))
    if "final" in table.column_names:
        rows = rows.filter(rows["final"])
    flat = rows[column].combine_chunks().flatten().to_numpy(zero_copy_only=False)
    return rows["cell_id"].to_pylist(), flat.reshape(rows.num_rows, -1)
