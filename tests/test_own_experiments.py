"""The user's own model and dataset through the whole pipeline (examples/my_lab), and their errors."""

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from click.testing import CliRunner
from workflow_helpers import REPO, SNAKEMAKE, planned_jobs, snakemake, write_config

from chaosgrid import data, engine, models, plugins, train
from chaosgrid.cells import GridError, validate_cell
from chaosgrid.cli import main
from chaosgrid.plan.specs import Shard
from chaosgrid.plan.studies import expand_study
from chaosgrid.trainers import TrainerError, train_runs

EXAMPLES = REPO / "examples"
OWN = {"model": "my_lab.nets:small_net", "dataset": "my_lab.data:load", "width": 4}


@pytest.fixture
def importable(tmp_path, monkeypatch) -> Path:
    """A copy of the example package on the import path of this process and of the workflow's jobs (a copy:
    a test edits it); returns its folder."""
    code = tmp_path / "code"
    shutil.copytree(EXAMPLES / "my_lab", code / "my_lab", ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join(p for p in (str(code), os.environ.get("PYTHONPATH")) if p)
    )
    return code


def test_planning_finds_the_users_module_without_importing_it(tmp_path, monkeypatch):
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab/__init__.py").write_text("raise RuntimeError('planning imported the package')")
    (tmp_path / "lab/nets.py").write_text("raise RuntimeError('planning imported the module')")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert plugins.source("lab.nets:net") == tmp_path / "lab/nets.py"
    with pytest.raises(plugins.PluginError, match="no 'nope' in lab"):
        plugins.source("lab.nope:net")


@pytest.mark.parametrize("study, message", [
    ({"model": "no_such_lab.nets:net"}, "parameter 'model': module 'no_such_lab.nets'"),
    ({"model": "lab.nets"}, "parameter 'model' is 'lab.nets'; choose one of cnn"),
    ({"dataset": {"npz": "missing.npz"}}, "parameter 'dataset': no file missing.npz"),
    ({"dataset": {"npz": "broken.npz"}}, "parameter 'dataset': broken.npz has no array 'y_test'"),
    ({"dataset": {"zip": "x.npz"}}, "as a mapping it takes one key, npz"),
    ({"dataset": {"npz": "whole.npz"}, "shifts": ["own_ood"]}, "whole.npz has no array 'x_ood'"),
    ({"shifts": ["own_ood"]}, "shift 'own_ood' names a set of the user's own dataset"),
])  # fmt: skip
def test_bad_own_code_is_named_at_planning(tmp_path, monkeypatch, study, message):
    monkeypatch.chdir(tmp_path)
    np.savez(
        tmp_path / "broken.npz",
        x_train=np.zeros((2, 1, 4)),
        y_train=np.zeros(2, int),
        x_test=np.zeros((2, 1, 4)),
    )
    np.savez(tmp_path / "whole.npz", x_train=np.zeros((2, 1, 4)), y_train=np.zeros(2, int), x_test=np.zeros((2, 1, 4)),
             y_test=np.zeros(2, int))  # fmt: skip
    with pytest.raises(GridError, match=message):
        expand_study("mine", study)


LAB = """import numpy as np
from torch import nn

def net(in_shape, num_classes, width):
    return nn.Linear(1, 1)

def two(in_shape, num_classes):
    return nn.Linear(1, 1)

def load():
    return {}

def train(params, data, verbose=False):
    return {}
"""


@pytest.mark.parametrize("study, message", [
    ({"model": "planlab.nets:nett"},
     "module 'planlab.nets' .* defines no 'nett' at top level .*; it defines load, net, nn, np, train, two"),
    ({"model": "planlab.nets:two"},
     r"planlab.nets:two takes \(in_shape, num_classes\); it is called with 3 positional arguments"),
    ({"dataset": "planlab.nets:net"}, r"takes \(in_shape, num_classes, width\); it is called with 0"),
    ({"trainer": "planlab.nets:load"}, r"planlab.nets:load takes \(no arguments\); it is called with 2"),
    ({"trainer": "command:no-such-program-here {out}"}, "program 'no-such-program-here' not found"),
    ({"trainer": "command:python3 train.py --lr {lrr} {out}"}, r"unknown placeholder \{lrr\}"),
    ({"trainer": "command:python3 'train.py {out}"}, "cannot be split into words"),
])  # fmt: skip
def test_mistakes_in_own_code_are_named_at_planning_without_importing_it(
    tmp_path, monkeypatch, study, message
):
    """A typo in the function's name, a wrong signature, a missing program, an unknown placeholder: named
    before any job runs, from the module's source (the module would fail if imported: planning did not)."""
    (tmp_path / "planlab").mkdir()
    (tmp_path / "planlab/__init__.py").write_text("raise RuntimeError('planning imported the package')")
    (tmp_path / "planlab/nets.py").write_text(LAB + "raise RuntimeError('planning imported the module')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(GridError, match=message):
        expand_study("mine", study)
    expand_study("mine", {"model": "planlab.nets:net"})  # the right ones pass
    expand_study("mine", {"trainer": "planlab.nets:train"})


def test_a_dataset_function_and_its_npz_give_the_same_dataset(tmp_path, importable):
    from my_lab.data import write_npz

    write_npz(str(tmp_path / "lab.npz"))
    by_function, by_file = data.load("my_lab.data:load"), data.load(f"npz:{tmp_path / 'lab.npz'}")
    assert by_function.x_train.shape == (1000, 1, 1, 24) and by_function.num_classes == 5
    drifted, labels = data.own_set("my_lab.data:load", "drifted")
    assert drifted.shape == (1000, 1, 1, 24) and torch.equal(labels, by_function.y_test)
    with pytest.raises(ValueError, match="has no evaluation set 'ood'.*its sets: drifted"):
        data.own_set("my_lab.data:load", "ood")
    assert torch.equal(by_function.x_train, by_file.x_train) and torch.equal(
        by_function.y_test, by_file.y_test
    )
    with pytest.raises(ValueError, match="labels must be integers in 0..255"):
        data.from_arrays("big", {"x_train": np.zeros((2, 1, 4)), "y_train": np.array([0, 300]),
                                 "x_test": np.zeros((1, 1, 4)), "y_test": np.array([0])})  # fmt: skip
    with pytest.raises(ValueError, match="x_train must be N x C x H x W images or N x C x L signals"):
        data.from_arrays("flat", {"x_train": np.zeros((2, 4)), "y_train": np.array([0, 1]),
                                  "x_test": np.zeros((1, 4)), "y_test": np.array([0])})  # fmt: skip


def test_a_model_vmap_cannot_stack_trains_on_the_loop_with_a_line_saying_why(tmp_path, monkeypatch, digits):
    (tmp_path / "branchy.py").write_text(
        "import torch\n"
        "class Branchy(torch.nn.Module):\n"
        "    def __init__(self, shape, classes):\n"
        "        super().__init__()\n"
        "        self.fc = torch.nn.Linear(int(torch.tensor(shape).prod()), classes)\n"
        "    def forward(self, x):\n"
        "        return self.fc(x.flatten(1)) * (2 if x.mean() > 0 else 1)  # data-dependent control flow\n"
        "def net(in_shape, num_classes, width):\n"
        "    return Branchy(in_shape, num_classes)\n"
    )  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    cell = validate_cell({"model": "branchy:net", "epochs": 0.2})
    assert "data-dependent control flow" in train.unstackable(cell, digits)
    assert train.unstackable(validate_cell({"model": "cnn"}), digits) == ""
    shard = Shard("s", "", {k: v for k, v in cell.items() if not k.endswith("_seed")}, tuple(range(8)))
    lines = []
    inputs = train.shard_inputs(shard, torch.device("cpu"), engine.Execution("vmap"), log=lines.append)
    assert inputs.execution.engine == "loop" and "vmap cannot stack branchy:net" in lines[0]
    results = train.train_shard(shard.cells(), inputs.data, inputs.sets, inputs.execution)
    assert len(results) == 8 and all(r.diverged_step == -1 for r in results)


@pytest.mark.parametrize("name", [m for m in models.MODELS if m != "conv1d"] + ["conv1d"])
def test_check_model_passes_for_every_built_in_model(name):
    dataset = "mnist1d" if name == "conv1d" else "digits"
    done = CliRunner().invoke(main, ["check-model", name, "--dataset", dataset, "--width", "2"])
    assert done.exit_code == 0, done.output
    if name == "vgg16_dmc":  # dropout: its runs draw from their own seeds on the loop engine
        assert "vmap: cannot stack it (it draws random numbers" in done.output
        assert done.output.count("equal each run alone") == 1
    else:
        assert "vmap: stacks it" in done.output and done.output.count("equal each run alone") == 2


def test_check_model_reports_a_users_model(importable):
    done = CliRunner().invoke(main, ["check-model", "my_lab.nets:small_net", "--dataset", "my_lab.data:load"])
    assert done.exit_code == 0, done.output
    assert "5 classes" in done.output and "parameters" in done.output and "MFLOP" in done.output


def cifar100_shaped(path: Path) -> None:
    """A 100-class set of 3x32x32 images, 6 per class to train, 3 to test: classes told apart by colour."""
    rng = np.random.default_rng(0)
    colours = rng.random((100, 3))
    make = lambda per: (np.repeat(np.arange(100), per),)
    (y_train,), (y_test,) = make(6), make(3)
    images = lambda y: (
        colours[y][:, :, None, None] + 0.05 * rng.standard_normal((len(y), 3, 32, 32))
    ).astype("f4")
    np.savez(path, x_train=images(y_train), y_train=y_train, x_test=images(y_test), y_test=y_test)


def test_own_model_and_datasets_run_through_the_workflow(tmp_path, importable):
    """The example's model and dataset function, and a 100-class CIFAR-100-shaped .npz: tables, figures and
    `chaosgrid compare` work; editing the model's file re-plans exactly its shards."""
    cifar100_shaped(tmp_path / "c100.npz")
    start = time.perf_counter()
    config = write_config(
        tmp_path,
        my_lab={
            **OWN,
            "epochs": 2,
            "batch_size": 50,
            "weight_decay": [0.0, 0.005],
            "seeds": 3,
            "shifts": ["own_drifted"],
        },
        hundred={
            "dataset": {"npz": "c100.npz"},
            "model": "cnn",
            "width": 4,
            "epochs": 3,
            "lr": 0.1,
            "seeds": 2,
        },
        sklearn={
            "trainer": "my_lab.train:run",
            "dataset": "my_lab.data:load",
            "hidden": [8, 32],
            "alpha": 0.001,
            "epochs": 40,
            "seeds": 3,
        },
    )
    snakemake(tmp_path, config)
    print(f"example study and the 100-class study through the workflow: {time.perf_counter() - start:.0f} s")
    runs = pd.read_parquet(tmp_path / "results/my_lab/tables/runs.parquet")
    assert len(runs) == 6 and set(runs["model"]) == {"my_lab.nets:small_net"} and runs["test_acc"].min() > 0.3
    hundred = pd.read_parquet(tmp_path / "results/hundred/tables/runs.parquet")
    evals = pd.read_parquet(tmp_path / "results/hundred/tables/evals.parquet")
    predictions = pd.read_parquet(next((tmp_path / "results/hundred/predictions").glob("*.parquet")))
    assert len(hundred) == 2 and hundred["test_acc"].min() > 0.05  # chance is 0.01
    assert np.concatenate(predictions["pred"].to_numpy()).max() > 9  # classes beyond the tenth are predicted
    assert len(evals) == 2 and (tmp_path / "results/hundred/tables/variance.parquet").exists()
    mlp = pd.read_parquet(tmp_path / "results/sklearn/tables/runs.parquet")
    assert sorted(mlp["hidden"]) == [8, 8, 8, 32, 32, 32] and (mlp["alpha"] == 0.001).all()
    assert mlp["test_acc"].min() > 0.3 and mlp["train_loss"].notna().all()
    drifted = pd.read_parquet(tmp_path / "results/my_lab/tables/evals.parquet").query(
        "shift == 'own_drifted'"
    )
    assert (
        len(drifted) == 6 and drifted["acc"].between(0.05, 1).all()
    )  # the dataset's own shifted set, evaluated
    for study in ("my_lab", "hundred", "sklearn"):
        assert (tmp_path / f"results/{study}/figures/mean_std_by_axis.png").exists()
    compared = subprocess.run([str(Path(SNAKEMAKE).with_name("chaosgrid")), "compare", "--study", "my_lab", "--axis",
                               "weight_decay", "--results", str(tmp_path / "results")],
                              capture_output=True, text=True, check=True)  # fmt: skip
    assert "weight_decay" in compared.stdout
    own_axis = subprocess.run([str(Path(SNAKEMAKE).with_name("chaosgrid")), "compare", "--study", "sklearn", "--axis",
                               "hidden", "--results", str(tmp_path / "results")],
                              capture_output=True, text=True, check=True)  # fmt: skip
    assert "hidden" in own_axis.stdout
    with open(importable / "my_lab/nets.py", "a") as model_file:  # an edit of the model's file (Snakemake
        model_file.write("# edited\n")  # compares contents: a touch alone re-runs nothing)
    plan = planned_jobs(snakemake(tmp_path, config, "-n").stdout)
    assert (
        plan["train_shard"] == 1 and "prepare_dataset" not in plan
    )  # my_lab's shard (its two weight decays trained as one stack), nothing of the others'


def write_trainer(folder: Path, body: str) -> str:
    """A module with `run(params, data)` whose body is `body` (numpy as np), named after the test's folder (a
    name imported once per process); returns the trainer's reference."""
    module = "trainer_" + "".join(c if c.isalnum() else "_" for c in folder.name)
    (folder / f"{module}.py").write_text("import numpy as np\n\ndef run(params, data):\n" + body)
    return f"{module}:run"


@pytest.mark.parametrize("body, message", [
    ("    raise RuntimeError('out of memory')\n", "raised RuntimeError: out of memory"),
    ("    return {'probabilities': {}}\n", "no probabilities for evaluation set 'clean'"),
    ("    return {'probabilities': {n: np.ones((len(x), 3)) / 3 for n, (x, y) in data.sets.items()}}\n",
     r"have shape \(\d+, 3\); expected \(\d+, 10\)"),
    ("    return {'probabilities': {n: np.full((len(x), 10), np.nan) for n, (x, y) in data.sets.items()}}\n",
     "are not probabilities"),
    ("    return [1, 2]\n", "returned list"),
])  # fmt: skip
def test_a_trainer_that_breaks_its_contract_fails_its_job_naming_what(tmp_path, monkeypatch, digits, digits_sets,
                                                                      body, message):  # fmt: skip
    trainer = write_trainer(tmp_path, body)
    monkeypatch.syspath_prepend(str(tmp_path))
    cells = [validate_cell({"trainer": trainer, "init_seed": 0})]
    with pytest.raises(TrainerError, match=message):
        train_runs(cells, digits, digits_sets)


def test_non_finite_logits_mark_a_run_diverged(tmp_path, monkeypatch, digits, digits_sets):
    trainer = write_trainer(tmp_path, "    bad = params['init_seed'] == 1\n"
                            "    return {'logits': {n: np.full((len(x), 10), np.nan if bad else 0.0)\n"
                            "                       for n, (x, y) in data.sets.items()}}\n")  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    cells = [validate_cell({"trainer": trainer, "init_seed": i}) for i in (0, 1)]
    good, bad = train_runs(cells, digits, digits_sets)
    assert good.diverged_step == -1 and good.evals["clean", 0].acc == pytest.approx(0.1, abs=0.05)
    assert bad.diverged_step == 0 and np.isnan(bad.evals["clean", 0].acc)


def test_a_command_trainer_gets_each_value_as_one_argument_never_read_by_a_shell(
    tmp_path, digits, digits_sets
):
    """Values a study sets reach the command as single arguments: `1; touch PWNED` and `$(id)` run nothing."""
    script = tmp_path / "train.py"
    script.write_text(
        "import sys, json, numpy as np\n"
        "data, out, note, tag = sys.argv[1:]\n"
        f"json.dump(sys.argv[1:], open({str(tmp_path / 'argv.json')!r}, 'w'))\n"
        "with np.load(data) as d:\n"
        "    names = [k[2:] for k in d.files if k.startswith('y.')]\n"
        "    np.savez(out, **{'logits.' + n: np.eye(10)[d['y.' + n]] for n in names})\n"
    )  # fmt: skip
    command = f"{sys.executable} {script} {{data}} {{out}} {{note}} {{tag}}"
    cell = validate_cell({"trainer": {"command": command}, "note": "1; touch PWNED", "tag": "$(id)"})
    (result,) = train_runs([cell], digits, digits_sets)
    assert result.evals["clean", 0].acc == 1.0  # the labels' one-hot logits came back
    assert json.loads((tmp_path / "argv.json").read_text())[2:] == ["1; touch PWNED", "$(id)"]
    assert not any(Path(p, "PWNED").exists() for p in (tmp_path, Path.cwd(), REPO))


def test_check_trainer_tells_a_trainer_that_ignores_its_seeds(tmp_path, monkeypatch):
    trainer = write_trainer(tmp_path, "    p = np.random.rand(1, 10)  # ignores the run's seeds\n"
                            "    return {'logits': {n: np.repeat(p, len(x), 0) for n, (x, y) in data.sets.items()}}\n")  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    done = CliRunner().invoke(main, ["check-trainer", trainer])
    assert done.exit_code == 1 and "DIFFERENT predictions" in done.output


def test_check_trainer_fails_a_trainer_that_seeds_itself_with_a_constant(tmp_path, monkeypatch):
    trainer = write_trainer(tmp_path, "    rng = np.random.default_rng(7)  # a constant, not the run's seeds\n"
                            "    p = rng.random((1, 10))\n"
                            "    return {'logits': {n: np.repeat(p, len(x), 0) for n, (x, y) in data.sets.items()}}\n")  # fmt: skip
    monkeypatch.syspath_prepend(str(tmp_path))
    done = CliRunner().invoke(main, ["check-trainer", trainer])
    assert done.exit_code == 1, done.output
    assert "equal predictions; a run with other seeds gives the SAME predictions" in done.output
    assert "the trainer ignores the seeds it is given" in done.output


def test_a_study_whose_seeds_change_nothing_says_so_in_its_results_and_in_compare(tmp_path):
    """A trainer that ignores its seeds: the results page and `chaosgrid compare` warn instead of reporting a
    std of 0 as a finding."""
    trainer = write_trainer(tmp_path, "    rng = np.random.default_rng(int(params['hidden']))\n"
                            "    return {'logits': {n: rng.random((len(x), 10)) for n, (x, y) in data.sets.items()}}\n")  # fmt: skip
    config = write_config(tmp_path, constant={"trainer": trainer, "hidden": [1, 2], "seeds": 3})
    snakemake(
        tmp_path,
        config,
        env={"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))},
    )
    page = (tmp_path / "results/constant/report/results.html").read_text()
    assert "WARNING: seeds had no effect at 2 grid points (hidden=1; hidden=2)" in page
    compared = subprocess.run([str(Path(SNAKEMAKE).with_name("chaosgrid")), "compare", "--study", "constant",
                               "--axis", "hidden", "--results", str(tmp_path / "results")],
                              capture_output=True, text=True, check=True)  # fmt: skip
    assert "WARNING: seeds had no effect at 2 grid points (hidden=1; hidden=2)" in compared.stdout


def test_editing_a_command_trainers_script_re_runs_exactly_its_shards(tmp_path):
    """The files a trainer command names (its script) are inputs of its shards, as a module's file is."""
    script = tmp_path / "train.py"
    script.write_text("import sys, numpy as np\n"
                      "data, out = sys.argv[1:]\n"
                      "with np.load(data) as d:\n"
                      "    np.savez(out, **{'logits.clean': np.eye(10)[d['y.clean']]})\n")  # fmt: skip
    command = f"command:{sys.executable} train.py {{data}} {{out}}"
    config = write_config(tmp_path, scripted={"trainer": command, "seeds": 2, "hidden": [1, 2]},
                          other={"width": 2, "epochs": 0.2, "seeds": 2})  # fmt: skip
    snakemake(tmp_path, config)
    assert planned_jobs(snakemake(tmp_path, config, "-n").stdout) == {}
    with open(script, "a") as edited:
        edited.write("# edited\n")
    plan = planned_jobs(snakemake(tmp_path, config, "-n").stdout)
    assert (
        plan["train_shard"] == 2 and "prepare_dataset" not in plan
    )  # scripted's two shards, none of other's


def images(n: int, shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(0).random((n, *shape)).astype("float32")


@pytest.mark.parametrize("arrays, message", [
    ({"x_train": images(60, (8, 8, 3)), "x_test": images(30, (8, 8, 3))},
     r"x_train is \(60, 8, 8, 3\), which looks like N x H x W x C \(channels last\); chaosgrid expects N x C x H x W"),
    ({"x_train": np.where(np.arange(60)[:, None, None, None] == 3, np.nan, images(60, (1, 4, 4)))},
     "x_train holds NaN or inf values in 1 of 60 examples; every run would diverge"),
    ({"x_test": np.full((30, 1, 4, 4), np.inf)}, "x_test holds NaN or inf values in 30 of 30 examples"),
])  # fmt: skip
def test_bad_arrays_are_named_when_the_dataset_is_prepared(tmp_path, arrays, message):
    """Channels-last images and non-finite values stop `chaosgrid prepare` (the workflow's first job) with one
    line saying what to do, before any shard trains."""
    full = {"x_train": images(60, (1, 4, 4)), "y_train": np.arange(60) % 3, "x_test": images(30, (1, 4, 4)),
            "y_test": np.arange(30) % 3, **arrays}  # fmt: skip
    np.savez(tmp_path / "d.npz", **full)
    done = CliRunner().invoke(
        main, ["prepare", "--dataset", f"npz:{tmp_path / 'd.npz'}", "--out", str(tmp_path / "p")]
    )
    assert done.exit_code == 1 and re.search(message, done.output), done.output
    assert "Traceback" not in done.output and len(done.output.splitlines()) == 1


def test_a_dataset_function_returning_the_wrong_type_is_named(tmp_path, monkeypatch):
    (tmp_path / "wrongdata.py").write_text("def load():\n    return 'x_train.npy'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    done = CliRunner().invoke(main, ["prepare", "--dataset", "wrongdata:load", "--out", str(tmp_path / "p")])
    assert done.exit_code == 1, done.output
    assert (
        "dataset 'wrongdata:load' returned str; it must return a mapping with keys x_train, y_train"
        in done.output
    )


@pytest.mark.parametrize("form", ["{npz: d.npz}", "d.npz", "npz:d.npz"])
def test_check_model_takes_a_dataset_as_a_study_names_it(tmp_path, monkeypatch, form):
    monkeypatch.chdir(tmp_path)
    np.savez(tmp_path / "d.npz", x_train=images(40, (1, 8, 8)), y_train=np.arange(40) % 4,
             x_test=images(20, (1, 8, 8)), y_test=np.arange(20) % 4)  # fmt: skip
    done = CliRunner().invoke(main, ["check-model", "cnn", "--dataset", form, "--width", "2"])
    assert done.exit_code == 0, done.output
    assert "cnn on npz:d.npz (width 2, 4 classes, inputs (1, 8, 8))" in done.output


def test_a_bad_dataset_fails_the_workflow_in_a_few_lines_saying_what_to_do_once(tmp_path):
    """Channels-last images through the real workflow: the preparation job fails before any shard trains, and
    the console holds its one-line reason once, not a traceback or the job's command (before: 106 lines)."""
    np.savez(tmp_path / "nhwc.npz", x_train=images(60, (8, 8, 3)), y_train=np.arange(60) % 3,
             x_test=images(30, (8, 8, 3)), y_test=np.arange(30) % 3)  # fmt: skip
    config = write_config(tmp_path, s={"dataset": {"npz": "nhwc.npz"}, "seeds": 2, "epochs": 1})
    done = snakemake(tmp_path, config, check=False)
    console = done.stdout + done.stderr
    assert done.returncode != 0 and console.count("looks like N x H x W x C (channels last)") == 1, console
    assert (
        "Traceback" not in console and "chaosgrid prepare" not in console and len(console.splitlines()) < 40
    )
    assert not (tmp_path / "results/s/runs").exists()


def test_a_trainer_that_fails_alike_on_its_retry_says_so_once_on_the_console(tmp_path, monkeypatch):
    trainer = write_trainer(tmp_path, "    raise KeyError('no_such_key')\n")
    config = write_config(tmp_path, broken={"trainer": trainer, "seeds": 2})
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}
    done = snakemake(tmp_path, config, env=env, check=False)
    console = done.stdout + done.stderr
    assert done.returncode != 0 and console.count("raised KeyError: 'no_such_key'") == 1, console
    assert (
        "Error in rule train_shard (results/broken/logs/seeds~0-1.log): its retry failed the same way"
        in console
    )
    assert "Traceback" not in console
