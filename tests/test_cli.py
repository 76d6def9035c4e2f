import subprocess
import sys

import pytest
from click.testing import CliRunner

from chaosgrid import device
from chaosgrid.cli import main


def test_help_lists_subcommands():
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0 and "train-shard" in result.output


@pytest.mark.parametrize(
    "base, named",
    [
        ('{"model": "transformer"}', "model"),
        ('{"lr": -0.1}', "lr"),
        ('{"data_fraction": 1.5}', "data_fraction"),
        ('{"data_fraction": 0}', "data_fraction"),
    ],
)
def test_bad_parameters_fail_before_training(tmp_path, base, named):
    spec = f'{{"base": {base}, "seeds": [0]}}'
    result = CliRunner().invoke(
        main,
        ["train-shard", "--spec", spec, "--runs", str(tmp_path / "r"), "--predictions", str(tmp_path / "p")],
    )
    assert result.exit_code == 2 and named in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("spec, named", [
    ("null", "a JSON object with base and seeds"), ('{"base": [], "seeds": [0]}', "'base' maps parameters"),
    ('{"base": {}, "seeds": ["a"]}', "'seeds' is a non-empty list"), ('{"base": {}, "seeds": 3}', "'seeds'"),
    ('{"base": {}, "seeds": []}', "'seeds'"), ('{"base": {}, "seeds": [-1]}', "'seeds'"),
    ('{"base": {}, "seeds": [0], "shfits": ["jpeg"]}', "unknown key 'shfits'"),
    ('{"base": {}, "seeds": [0], "shifts": "jpeg"}', "'shifts' is a list"), ("[1, 2", "Expecting"),
    ('{"base": {}, "seeds": [0], "points": [{"width": 4}]}', "'points' is a list of grid points' lr, momentum"),
    ('{"base": {}, "seeds": [0], "points": [{"lr": 0.1}], "weights": true}', "'points' keeps no weights"),
])  # fmt: skip
def test_a_malformed_spec_is_one_clear_error_naming_the_key(tmp_path, spec, named):
    """Specs written by hand: each mistake is named before torch loads, never a traceback."""
    args = ["--runs", str(tmp_path / "r"), "--predictions", str(tmp_path / "p")]
    result = CliRunner().invoke(main, ["train-shard", "--spec", spec, *args])
    assert result.exit_code == 2 and named in result.output and "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_unknown_shift_and_missing_spec_file_are_named(tmp_path):
    args = ["--runs", str(tmp_path / "r"), "--predictions", str(tmp_path / "p")]
    bad_shift = '{"base": {}, "seeds": [0], "shifts": ["snow"], "severities": [1]}'
    result = CliRunner().invoke(main, ["train-shard", "--spec", bad_shift, *args])
    assert result.exit_code == 2 and "'snow'" in result.output
    result = CliRunner().invoke(main, ["train-shard", "--spec", "@/nonexistent.json", *args])
    assert result.exit_code == 2 and "/nonexistent.json" in result.output


def test_missing_cifar_is_a_clear_error(tmp_path):
    spec = '{"base": {"dataset": "cifar10"}, "seeds": [0]}'
    result = subprocess.run(
        [sys.executable, "-m", "chaosgrid.cli", "train-shard", "--spec", spec, "--data-root", str(tmp_path),
         "--runs", str(tmp_path / "r"), "--predictions", str(tmp_path / "p")],
        capture_output=True, text=True,
    check=False)  # fmt: skip
    assert (
        result.returncode == 1 and "cifar-10-batches-py" in result.stderr and "Traceback" not in result.stderr
    )


def test_execution_options_reach_the_runs_table(tmp_path):
    """--engine and --channels-last change how a shard runs; each runs row says so."""
    import pyarrow.parquet as pq

    spec = '{"base": {"width": 4, "epochs": 0.2, "precision": "bf16", "tta": "flip"}, "seeds": [0, 1]}'
    result = CliRunner().invoke(main, ["train-shard", "--spec", spec, "--engine", "vmap", "--channels-last",
                                       "--runs", str(tmp_path / "r"), "--predictions", str(tmp_path / "p")])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "(vmap, channels-last, 1 threads)" in result.output
    rows = pq.read_table(tmp_path / "r").to_pylist()
    assert [(r["engine"], r["channels_last"], r["compiled"]) for r in rows] == [("vmap", True, False)] * 2
    assert {(r["precision"], r["tta"]) for r in rows} == {("bf16", "flip")}


@pytest.mark.parametrize(
    "spec, named",
    [
        ('{"base": {}, "seeds": [0], "weights": true}', "--weights"),
        ('{"base": {"init_from": "base"}, "seeds": [0]}', "--init-weights"),
        ('{"base": {}, "seeds": [0], "checkpoints": "often"}', "checkpoints"),
    ],
)
def test_missing_weights_paths_and_bad_checkpoints_are_named(tmp_path, spec, named):
    result = CliRunner().invoke(main, ["train-shard", "--spec", spec, "--runs", str(tmp_path / "r.parquet"),
                                       "--predictions", str(tmp_path / "p.parquet")])  # fmt: skip
    assert result.exit_code == 2 and named in result.output
    assert not list(tmp_path.iterdir())


def test_unknown_analysis_is_named(tmp_path):
    result = CliRunner().invoke(main, ["analysis-figures", "--analysis", "swa", "--tables", str(tmp_path),
                                       "--outdir", str(tmp_path)])  # fmt: skip
    assert (
        result.exit_code == 2 and "'swa'" in result.output and "variance, compare, regions" in result.output
    )


def test_curve_jobs_name_a_bad_spec_and_a_run_missing_from_the_weights(tmp_path):
    import torch

    from chaosgrid import evaluation, store
    from chaosgrid.cells import validate_cell

    weights = tmp_path / "w.pt"
    state = {"0.weight": torch.zeros(1)}
    store.write_weights([evaluation.RunResult(validate_cell({}), 0, 1, -1, 0, {}, steps=1, weights={1: state})], [0],
                        weights, ["0.weight"])  # fmt: skip
    run = lambda spec: CliRunner().invoke(main, ["train-curves", "--spec", spec, "--start", str(weights), "--end",
                                                 str(weights), "--out", str(tmp_path / "c.parquet")])  # fmt: skip
    bad = run('{"cell": {}, "seeds": [0, 1], "kinds": ["spline"]}')
    assert bad.exit_code == 2 and "kinds must be among line, chain, bezier" in bad.output
    missing = run('{"cell": {"dataset": "digits"}, "seeds": [0, 1]}')
    assert missing.exit_code == 1 and "holds no run with seed index 1" in missing.output
    assert not (tmp_path / "c.parquet").exists()


@pytest.mark.parametrize("device, named", [("gpu", "'gpu' is not a device"), ("cuda:99", "sees")])
def test_bad_device_is_named_before_training(tmp_path, device, named):
    result = CliRunner().invoke(main, ["train-shard", "--spec", '{"base": {}, "seeds": [0]}', "--device", device,
                                       "--runs", str(tmp_path / "r.parquet"), "--predictions", str(tmp_path / "p.parquet")])  # fmt: skip
    assert result.exit_code == 2 and named in result.output and "Traceback" not in result.output
    assert not list(tmp_path.iterdir())


def test_jobs_on_one_machine_claim_different_gpus(tmp_path):
    """Each job holds a lock on the GPU it takes; the next takes the next free one, and a GPU is free again
    once its job's lock is released (at exit)."""

    assert [device.claim_gpu(3, tmp_path) for _ in range(3)] == [0, 1, 2]
    assert device.claim_gpu(3, tmp_path) in (0, 1, 2)  # all held: shares one rather than failing
    device._CLAIMED.pop(1).close()  # the job on GPU 1 ends
    assert device.claim_gpu(3, tmp_path) == 1
    while device._CLAIMED:
        device._CLAIMED.pop().close()


def test_evaluate_shard_gives_the_predictions_of_evaluating_while_training(tmp_path):
    """The workflow's two steps for a shard that keeps weights (train-shard on the clean test set, then
    evaluate-shard on its shifts) write the predictions that train-shard alone writes, bit for bit; a
    weights file without the spec's runs is named."""
    import json

    import pyarrow.parquet as pq

    spec = {"base": {"width": 4, "epochs": 0.5}, "seeds": [0, 1], "shifts": ["jpeg"], "severities": [1]}
    cli = [sys.executable, "-m", "chaosgrid.cli"]
    files = lambda name: {
        kind: str(tmp_path / f"{name}_{kind}") for kind in ("runs", "predictions", "weights")
    }
    alone, kept = files("alone"), files("kept")
    subprocess.run([*cli, "train-shard", "--spec", json.dumps(spec), "--runs", alone["runs"], "--predictions",
                    alone["predictions"]], check=True, capture_output=True)  # fmt: skip
    training = {"base": spec["base"], "seeds": [0, 1], "weights": True}
    subprocess.run([*cli, "train-shard", "--spec", json.dumps(training), "--runs", kept["runs"], "--predictions",
                    str(tmp_path / "trained"), "--weights", kept["weights"]], check=True, capture_output=True)  # fmt: skip
    evaluate = lambda spec: CliRunner().invoke(main, [
        "evaluate-shard", "--spec", json.dumps(spec), "--weights", kept["weights"], "--runs", kept["runs"],
        "--trained", str(tmp_path / "trained"), "--predictions", kept["predictions"]])  # fmt: skip
    done = evaluate({**spec, "weights": True})
    assert done.exit_code == 0, done.output
    assert pq.read_table(kept["predictions"]).sort_by([("shift", "ascending"), ("cell_id", "ascending")]).equals(
        pq.read_table(alone["predictions"]).sort_by([("shift", "ascending"), ("cell_id", "ascending")]))  # fmt: skip
    other = evaluate({**spec, "seeds": [0, 2], "weights": True})
    assert other.exit_code == 1 and "holds no run of this spec with seed index 2: delete it" in other.output
