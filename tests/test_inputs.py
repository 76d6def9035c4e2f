"""Prepared inputs: a dataset and its shifted sets made once as files give the shard exactly what it would
have made itself."""

import pandas as pd
import pytest
import torch
from click.testing import CliRunner

from chaosgrid import data, evalsets, inputs, planes, shifts
from chaosgrid.cli import main
from chaosgrid.plan.blocks import plane_spec
from chaosgrid.plan.paths import DATASET_FILE, prepared_inputs
from chaosgrid.plan.workflow import prepared_options

PAIRS = evalsets.eval_pairs(["jpeg", "gaussian_blur", "planes"], [1, 4])


def test_prepared_dataset_and_sets_are_the_same_bits_as_made_in_process(tmp_path, digits):
    spec = plane_spec({"images": "test", "triplets": 5})
    files = shifts.prepare_inputs(digits, PAIRS, tmp_path, planes=spec)
    loaded = inputs.load_dataset("digits", files["data"])
    assert all(torch.equal(getattr(loaded, f), getattr(digits, f)) for f in inputs.DATASET_FIELDS)
    made, read = (
        shifts.eval_sets(d, PAIRS, prepared=p, planes=spec) for d, p in ((digits, None), (loaded, files))
    )
    assert list(made) == list(read) == PAIRS
    images = lambda x: (
        x.materialize() if isinstance(x, planes.PlanePoints) else x
    )  # planes: made as evaluated
    assert all(torch.equal(images(made[k][0]), images(read[k][0])) and torch.equal(made[k][1], read[k][1])
               for k in PAIRS)  # fmt: skip
    assert files == prepared_inputs(tmp_path, PAIRS, "test-distinct-5")
    assert {name: p.name for name, p in files.items()} == {
        "data": "data.pt", "jpeg~1": "jpeg~1.pt", "jpeg~4": "jpeg~4.pt", "gaussian_blur~1": "gaussian_blur~1.pt",
        "gaussian_blur~4": "gaussian_blur~4.pt", "planes": "test-distinct-5.pt"}  # fmt: skip
    assert all(path.exists() for path in files.values())


def test_a_shard_trained_on_prepared_inputs_equals_one_that_made_its_own(tmp_path):
    folder = tmp_path / "prepared"
    run = lambda *args: CliRunner().invoke(main, list(map(str, args)))
    files = prepared_inputs(folder, evalsets.eval_pairs(["contrast"], [2]))
    assert run("prepare", "--dataset", "digits", "--out", files["data"]).exit_code == 0
    made = run("prepare", "--dataset", "digits", "--eval-set", "contrast~2", "--from", files["data"],
               "--out", files["contrast~2"])  # fmt: skip
    assert made.exit_code == 0 and files["contrast~2"].exists(), made.output
    spec = '{"base": {"width": 4, "epochs": 1}, "seeds": [0, 1], "shifts": ["contrast"], "severities": [2]}'
    tables = {}
    for how, extra in {"own": [], "prepared": prepared_options(files)}.items():
        done = run("train-shard", "--spec", spec, "--runs", tmp_path / f"{how}.r", "--predictions",
                   tmp_path / f"{how}.p", *extra)  # fmt: skip
        assert done.exit_code == 0, done.output
        tables[how] = pd.read_parquet(tmp_path / f"{how}.p")
    pd.testing.assert_frame_equal(tables["own"], tables["prepared"])


def test_a_missing_prepared_file_is_named(tmp_path):
    inputs.save_dataset(data.digits(), tmp_path / "data.pt")
    spec = '{"base": {"width": 4, "epochs": 1}, "seeds": [0], "shifts": ["jpeg"], "severities": [3]}'
    train = [
        "train-shard",
        "--spec",
        spec,
        "--runs",
        str(tmp_path / "r"),
        "--predictions",
        str(tmp_path / "p"),
    ]
    done = CliRunner().invoke(main, [*train, "--prepared", f"data={tmp_path / 'data.pt'}"])
    assert done.exit_code == 1 and "no prepared file of the evaluation set jpeg~3" in done.output
    done = CliRunner().invoke(
        main, [*train, "--prepared", f"data={tmp_path / 'data.pt'}", "--prepared", "jpeg~3=gone.pt"]
    )
    assert done.exit_code == 2 and "gone.pt not found" in done.output
    prepare = [
        "prepare",
        "--dataset",
        "digits",
        "--from",
        str(tmp_path / "data.pt"),
        "--out",
        str(tmp_path / "x.pt"),
    ]
    bad = CliRunner().invoke(main, [*prepare, "--eval-set", "jpeg"])
    assert bad.exit_code == 2 and "'jpeg' is not an evaluation set's name: SHIFT~SEVERITY" in bad.output
    bad = CliRunner().invoke(main, [*prepare, "--planes", "test-500"])
    assert bad.exit_code == 2 and "'test-500' is not a planes key" in bad.output


def test_a_corrupt_prepared_file_or_weights_file_is_named_with_what_to_do(tmp_path, digits):
    """torch's own message ("mmap can only be used with files saved with ...") names no file; a flipped bit
    would pass torch.load unseen."""
    from chaosgrid import store

    path = tmp_path / DATASET_FILE
    inputs.save_dataset(digits, path)
    path.write_bytes(path.read_bytes()[:1000])  # truncated, as by a full disk or a killed copy
    with pytest.raises(
        ValueError, match=f"{path} is truncated or corrupt .*: delete it and run the workflow again"
    ):
        inputs.load_dataset("digits", path)
    inputs.save_dataset(digits, path)  # one bit flipped in the training images: the checksum finds it
    content = bytearray(path.read_bytes())
    at = content.index(digits.x_train[100].numpy().tobytes())
    content[at + 5] ^= 1
    path.write_bytes(bytes(content))
    with pytest.raises(
        ValueError, match=f"{path}: its x_train does not match the checksum .*: delete it and run"
    ):
        inputs.load_dataset("digits", path)
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"not a torch file")
    with pytest.raises(
        ValueError, match=f"{weights} is truncated or corrupt .*: delete it to have its shard re-run"
    ):
        store.starting_weights(weights, [0])
