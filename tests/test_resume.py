"""Shards that resume: a `chaosgrid train-shard` stopped (SIGTERM: it saves and exits 75) or killed (SIGKILL,
after a save) resumes from its saved state, and its tables are bit-identical to an uninterrupted run's."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import torch

CHAOSGRID = str(Path(sys.executable).with_name("chaosgrid"))
SPEC = ('{"study": "r", "key": "seeds~0-2", "base": {"width": 4, "epochs": 2, "augmentation": "flip_crop", '
        '"noise_additive": 0.001}, "seeds": [0, 1, 2], '
        '"checkpoints": "every:1"}')  # fmt: skip
SHORT = '{"study": "r", "key": "seeds~0-2", "base": {"width": 4, "epochs": 0.5}, "seeds": [0, 1, 2]}'
TIMING = {"wall_s", "host", "git_commit"}  # what differs between two runs of the same shard


def train(folder: Path, engine: str, *extra: str, spec: str = SPEC) -> subprocess.Popen:
    """A shard job writing folder/runs/seeds~0-2.parquet (its state: folder/resume/seeds~0-2.pt)."""
    outputs = {kind: folder / kind / "seeds~0-2.parquet" for kind in ("runs", "predictions", "history")}
    resume = [] if "--resume" in extra else ["--resume", str(folder / "resume" / "seeds~0-2.pt")]
    cmd = [CHAOSGRID, "train-shard", "--spec", spec, "--engine", engine, "--threads", "1", *extra, *resume,
           *(arg for kind, path in outputs.items() for arg in (f"--{kind}", str(path)))]  # fmt: skip
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop_after_a_save(job: subprocess.Popen, state: Path, signum: int) -> str:
    """Send `signum` once the job has saved a state newer than the one there before; its exit code and output."""
    before = state.stat().st_mtime_ns if state.exists() else 0
    while job.poll() is None and (not state.exists() or state.stat().st_mtime_ns == before):
        time.sleep(0.01)
    assert job.poll() is None, "the shard finished before a save: make it longer"
    job.send_signal(signum)
    return job.communicate()[0]


def tables(folder: Path) -> dict:
    out = {}
    for kind in ("runs", "predictions", "history"):
        table = pq.read_table(folder / kind / "seeds~0-2.parquet")
        out[kind] = table.select([c for c in table.column_names if c not in TIMING])
    return out


@pytest.mark.parametrize("engine", ["loop", "vmap"])
def test_a_stopped_then_killed_shard_resumes_to_bit_identical_tables(tmp_path, engine):
    """Loop (runs trained one group at a time: a resumed shard skips the groups done): stopped with SIGTERM
    after a save, then SIGKILLed after a later one, then finished. Vmap (all runs together): SIGKILLed."""
    whole = train(tmp_path / "whole", engine)
    assert whole.wait() == 0, whole.stdout.read()
    state = tmp_path / "cut/resume/seeds~0-2.pt"
    if engine == "loop":  # SIGTERM's path is the engine's same; the loop's groups make it the longer story
        said = stop_after_a_save(
            train(tmp_path / "cut", engine, "--save-every", "0.001"), state, signal.SIGTERM
        )
        assert "stopped on request" in said and state.exists()
    killed = train(tmp_path / "cut", engine, "--save-every", "0.001")
    said = stop_after_a_save(killed, state, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    finished = train(tmp_path / "cut", engine, "--save-every", "0.001")
    said = finished.communicate()[0]
    assert finished.returncode == 0 and "resuming from" in said, said
    assert not state.exists()  # removed once the shard is done
    whole_tables, cut_tables = tables(tmp_path / "whole"), tables(tmp_path / "cut")
    for kind in whole_tables:
        assert cut_tables[kind].equals(whole_tables[kind]), kind


def test_a_state_of_another_spec_is_ignored_and_a_corrupt_one_reported(tmp_path):
    state = tmp_path / "a/resume/seeds~0-2.pt"
    state.parent.mkdir(parents=True)
    torch.save({"spec": "{}", "group": 0, "results": [], "fit": None}, state)
    said = train(tmp_path / "a", "loop", spec=SHORT).communicate()[0]
    assert "was saved for another spec: ignored, starting over" in said and not state.exists()
    state.parent.mkdir(parents=True, exist_ok=True)
    state.write_bytes(b"not a torch file")
    said = train(tmp_path / "b", "loop", "--resume", str(state), spec=SHORT).communicate()[0]
    assert f"{state} is truncated or corrupt" in said and "starting over" in said
    assert tables(tmp_path / "a")["runs"].equals(tables(tmp_path / "b")["runs"])
    assert os.path.exists(tmp_path / "b/runs/seeds~0-2.parquet")


class RunsCode:
    """What a crafted state file holds: unpickling it (weights_only=False) would run a command."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_a_state_file_that_would_run_code_runs_nothing_and_is_reported(tmp_path):
    """results/ is often group-writable on a cluster: a state is read with weights_only=True, so a planted
    file runs no code; the shard says why it is not used and starts over."""
    marker = tmp_path / "ran"
    state = tmp_path / "a/resume/seeds~0-2.pt"
    state.parent.mkdir(parents=True)
    torch.save({"spec": SHORT, "layout": 3, "group": 0, "results": [RunsCode(marker)], "fit": None}, state)
    job = train(tmp_path / "a", "loop", spec=SHORT)
    said = job.communicate()[0]
    assert job.returncode == 0 and not marker.exists()
    assert f"{state} holds objects other than tensors and plain values" in said and "starting over" in said


def test_a_state_of_an_older_layout_is_reported_and_the_shard_starts_over(tmp_path):
    """A state with the right spec but another layout (an older chaosgrid's, without "fit") would fail every
    retry with a KeyError; it is reported and ignored instead."""
    state = tmp_path / "a/resume/seeds~0-2.pt"
    state.parent.mkdir(parents=True)
    torch.save({"spec": SHORT, "group": 1, "results": []}, state)
    job = train(tmp_path / "a", "loop", spec=SHORT)
    said = job.communicate()[0]
    assert job.returncode == 0, said
    assert (
        "saved by another version of chaosgrid (layout 1, this one reads 3): ignored, starting over" in said
    )
    assert len(tables(tmp_path / "a")["runs"]) == 3
