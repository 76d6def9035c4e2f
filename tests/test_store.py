import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from chaosgrid import engine, evaluation, store, train
from chaosgrid.cells import cell_id, validate_cell
from chaosgrid.plan.studies import expand_study

CLI = [sys.executable, "-m", "chaosgrid.cli"]


@pytest.fixture(scope="module")
def shard_tables(tmp_path_factory):
    """A shard of 8 default runs trained through the real CLI, as a user would."""
    out = tmp_path_factory.mktemp("shard")
    shard = expand_study(
        "t", {"seeds": 8, "epochs": 3, "shifts": ["gaussian_noise", "contrast"], "severities": [1, 3]}
    )[0]
    done = subprocess.run(
        [*CLI, "train-shard", "--spec", shard.to_json(), "--runs", out / "runs.parquet",
         "--predictions", out / "predictions.parquet"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return (
        shard,
        done.stdout,
        pq.read_table(out / "runs.parquet"),
        pq.read_table(out / "predictions.parquet"),
        out,
    )


def test_shard_of_8_gives_8_runs_and_8_x_eval_sets_predictions(shard_tables, digits):
    shard, _, runs, predictions, out = shard_tables
    assert runs.num_rows == 8 and runs.schema.equals(store.RUNS_SCHEMA)
    assert predictions.num_rows == 8 * 5 and predictions.schema.equals(store.PREDICTIONS_SCHEMA)
    assert set(runs["cell_id"].to_pylist()) == {cell_id(c) for c in shard.cells()}
    assert {len(p) for p in predictions["pred"].to_pylist()} == {len(digits.y_test)}
    _, preds = store.matrix(predictions, "pred", "gaussian_noise", 3)
    assert preds.shape == (8, len(digits.y_test)) and preds.dtype == np.uint8
    _, p_true = store.matrix(predictions, "p_true")
    assert p_true.dtype == np.float16
    clean_acc = (store.matrix(predictions)[1] == digits.y_test.numpy()).mean(1)
    np.testing.assert_allclose(clean_acc, runs["test_acc"].to_numpy())
    bytes_per = os.path.getsize(out / "predictions.parquet") / predictions.num_rows
    print(f"predictions: {bytes_per:.0f} bytes per run per eval set of {len(digits.y_test)} examples")


def test_progress_and_provenance(shard_tables):
    _, stdout, runs, _, _ = shard_tables
    assert stdout.count("test_acc") == 8 and "[8/8]" in stdout
    row = runs.slice(0, 1).to_pylist()[0]
    assert row["torch_version"].startswith("2.") and row["device"] == "cpu" and row["threads"] == 1
    assert row["chaosgrid_version"] and row["git_commit"] and row["engine"] == "vmap"  # 8 runs, 8x8 images
    assert row["channels_last"] is False and row["compiled"] is False
    assert row["shard"] == "seeds~0-7"
    assert pq.read_metadata(shard_tables[4] / "runs.parquet").row_group(0).column(0).compression == "ZSTD"


def test_write_is_atomic_when_writing_fails(tmp_path):
    table = store.runs_table([], "s", store.provenance("cpu", 1, engine.Execution("loop").provenance()))

    class Boom(Exception):
        pass

    def explode(*args, **kwargs):
        raise Boom

    original = store.pq.write_table
    store.pq.write_table = explode
    try:
        with pytest.raises(Boom):
            store.write_table(table, tmp_path / "runs.parquet")
    finally:
        store.pq.write_table = original
    assert list(tmp_path.iterdir()) == []


def test_killed_training_process_leaves_no_result_file(tmp_path):
    spec = json.dumps({"base": {"epochs": 400}, "seeds": [0, 1]})
    runs, predictions = tmp_path / "runs.parquet", tmp_path / "predictions.parquet"
    proc = subprocess.Popen(
        [*CLI, "train-shard", "--spec", spec, "--runs", runs, "--predictions", predictions],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert "runs" in proc.stdout.readline()  # data loaded, training under way
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    assert list(tmp_path.iterdir()) == []


def test_diverged_runs_are_rows_not_crashes(digits, digits_sets):
    cells = expand_study("d", {"lr": 1e20, "epochs": 1, "weight_decay": 0, "seeds": 2})[0].cells()
    results = train.train_shard(cells, digits, digits_sets)
    runs = store.runs_table(results, "k", store.provenance("cpu", 1, engine.Execution("loop").provenance()))
    assert runs["diverged"].to_pylist() == [True, True]
    assert all(s >= 0 for s in runs["diverged_step"].to_pylist())


def test_a_study_asking_for_probabilities_stores_every_class_per_example(tmp_path, digits):
    """`probabilities: true` (ensembles average them): one float16 per class and example, summing to one, whose
    argmax is the stored prediction; other studies store null and their specs do not change."""
    plain, asking = (expand_study("t", {"seeds": 2, "epochs": 1, "width": 4, "shifts": ["jpeg"], "severities": [2],
                                       **extra})[0] for extra in ({}, {"probabilities": True}))  # fmt: skip
    assert '"probabilities"' not in plain.to_json() and '"probabilities": true' in asking.to_json()
    for name, shard in (("plain", plain), ("asking", asking)):
        subprocess.run([*CLI, "train-shard", "--spec", shard.to_json(), "--runs", tmp_path / f"{name}.r",
                        "--predictions", tmp_path / f"{name}.p"], capture_output=True, check=True)  # fmt: skip
    assert pq.read_table(tmp_path / "plain.p")["probs"].null_count == 2 * 2
    assert pq.read_table(tmp_path / "plain.p")["labels"].null_count == 2 * 2
    table = pq.read_table(tmp_path / "asking.p")
    assert table.schema.equals(store.PREDICTIONS_SCHEMA) and table["probs"].null_count == 0
    for row in table.to_pylist():
        assert row["shift"] != "clean" or row["labels"] == digits.y_test.tolist()
        probs = np.asarray(row["probs"], dtype=np.float32).reshape(len(row["pred"]), 10)
        np.testing.assert_allclose(probs.sum(1), 1, atol=1e-2)
        assert (probs.argmax(1) == np.asarray(row["pred"])).mean() > 0.99  # float16 ties aside
        np.testing.assert_allclose(
            probs[np.arange(len(probs)), digits.y_test.numpy()], row["p_true"], atol=1e-3
        )


def test_weights_files_find_a_checkpoint_by_epoch_and_name_the_trainable_parameters(tmp_path):
    """FGE starts from the Ind run's checkpoint at 80% of its epochs (init_epoch); a missing one is named with
    the epochs kept. Distances compare trainable parameters only, so the file lists them."""
    import torch

    states = {5: {"w": torch.zeros(2), "bn.running_mean": torch.ones(2)}, 10: {"w": torch.ones(2),
              "bn.running_mean": torch.ones(2)}}  # fmt: skip
    result = evaluation.RunResult(
        validate_cell({"epochs": 5}), 0.0, 1.0, -1, 0.0, {}, steps=10, weights=states
    )
    path = tmp_path / "w.pt"
    store.write_weights([result], [7], path, ["w"])
    assert store.read_weights(path)["parameters"] == ["w"]
    (final,) = store.starting_weights(path, [7])
    (middle,) = store.starting_weights(path, [7], epoch=2.5)
    assert final["w"].tolist() == [1, 1] and middle["w"].tolist() == [0, 0]
    with pytest.raises(ValueError, match=r"no checkpoint kept at epoch 3 \(kept: epochs 2.5, 5\)"):
        store.starting_weights(path, [7], epoch=3)
    with pytest.raises(FileNotFoundError, match="no run with seed index 8"):
        store.starting_weights(path, [8])


def test_a_writer_that_fails_after_removing_its_temporary_file_surfaces_its_own_error(tmp_path):
    """pyarrow removes its output when the disk is full; the cleanup must not mask ENOSPC."""
    import errno
    from pathlib import Path

    def full_disk(tmp):
        Path(tmp).unlink()
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space left on device"):
        store.write_atomically(tmp_path / "runs.parquet", full_disk)
    assert list(tmp_path.iterdir()) == []


def test_sigterm_while_writing_leaves_no_temporary_file(tmp_path):
    """SIGTERM (SLURM's first signal) in the middle of a write: the job exits 143 and removes its .tmp."""
    script = ("import sys, time\nfrom chaosgrid import cli, store\ncli.exit_on_sigterm()\n"
              "def slow(tmp):\n    open(tmp, 'w').write('partial')\n    print('writing', flush=True)\n    time.sleep(60)\n"
              f"store.write_atomically({str(tmp_path / 'out.parquet')!r}, slow)\n")  # fmt: skip
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "writing"
    time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 143
    assert list(tmp_path.iterdir()) == []


def test_a_temporary_file_a_killed_writer_left_is_removed_by_the_next_write(tmp_path):
    """SIGKILL runs no cleanup: the job that redoes the write removes the hidden leftover of its target only."""
    left = tmp_path / ".runs.parquet.abc123.tmp"
    left.write_text("partial")
    other = tmp_path / ".other.parquet.abc123.tmp"
    other.write_text("another target's")
    store.write_atomically(tmp_path / "runs.parquet", lambda tmp: Path(tmp).write_text("whole"))
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.parquet.abc123.tmp", "runs.parquet"]


def test_a_truncated_shard_file_is_named_with_what_to_do(shard_tables, tmp_path):
    """pyarrow's own message for a damaged file in a study's list may not say which; aggregation does."""
    from chaosgrid.aggregate import read_columns

    *_, out = shard_tables
    good, bad = tmp_path / "a.parquet", tmp_path / "b.parquet"
    good.write_bytes((out / "predictions.parquet").read_bytes())
    bad.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # a killed copy or a full disk
    with pytest.raises(
        ValueError, match=f"^{bad} is truncated or corrupt .*: delete it to have its shard re-run$"
    ):
        read_columns([good, bad], ["cell_id", "acc"])
