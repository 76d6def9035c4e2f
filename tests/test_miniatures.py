"""Every miniature config runs through the real workflow (`chaosgrid rehearse`: 2 seeds, one value per axis,
about an epoch) and ends in its tables, figures and report pages; the caps change only what they say."""

from __future__ import annotations

import os

import pytest
import yaml
from workflow_helpers import REPO, rehearsed

from chaosgrid.plan.rehearsal import rehearsal, standin_examples
from chaosgrid.plan.studies import expand_studies

MINIATURES = sorted(
    [REPO / "config/config.yaml", *(REPO / "config").glob("*_small.yaml"), REPO / "examples/config.yaml"]
)


@pytest.mark.parametrize(
    "configfile", MINIATURES, ids=lambda p: p.stem if p.parent.name == "config" else "examples"
)
def test_each_miniature_runs_to_its_report(configfile, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO / "examples")}  # examples/config.yaml's own model and data
    rehearsed(configfile, tmp_path, env)


def test_the_caps_keep_what_they_do_not_say():
    paper = yaml.safe_load((REPO / "config/ensembles_small.yaml").read_text())
    capped, said = rehearsal(paper)
    for name, study in capped["studies"].items():
        was = paper["studies"][name]
        assert {k: v for k, v in study.items() if k not in ("epochs", "seeds", "init_epoch", "curves")} == {
            k: v for k, v in was.items() if k not in ("epochs", "seeds", "init_epoch", "curves")
        }
        assert study["seeds"] == 2 and study["epochs"] <= 1
    # FGE starts from its source's epoch 48 of 60: after the caps, epoch 0.8 of 1, a checkpoint the source keeps
    assert capped["studies"]["ensembles_small_fge"]["init_epoch"] == 0.8
    expand_studies(capped["studies"])  # plans: no missing checkpoint, no pair without two seeds
    assert "ensembles_small: curves: pairs 3 -> 1" in said
    assert any(line.startswith("ensembles_small: every length in epochs / 60") for line in said)


def test_a_rehearsal_keeps_two_values_of_a_compared_axis_the_widest_width_and_each_models_first_variant():
    config = {"studies": {
        "s": {"lr": [0.1, 0.2, 0.3], "width": [4, 8], "until": {"compare": {"axis": "lr"}, "block": 8, "max_seeds": 32},
              "epochs": 10, "checkpoints": 5},
        "v": {"variants": {"a": {"lr": 0.1}, "b": {"lr": 0.2}, "c": {"lr": 0.3, "epochs": 40},
                           "d": {"model": "vgg16"}, "e": {"model": "vgg16", "lr": 0.2}}, "seeds": 5},
    }}  # fmt: skip
    capped, said = rehearsal(config)
    s, v = capped["studies"]["s"], capped["studies"]["v"]
    assert (
        s["lr"] == [0.1, 0.2] and s["width"] == 8 and (s["until"]["block"], s["until"]["max_seeds"]) == (2, 4)
    )
    assert (s["epochs"], s["checkpoints"]) == (
        1.0,
        0.5,
    )  # still two checkpoints, written as a config writes them
    assert list(v["variants"]) == ["a", "d", "e"] and v["seeds"] == 2
    assert config["studies"]["s"]["lr"] == [0.1, 0.2, 0.3]  # the config given is left as it was
    assert "v: variants: 5 -> a, d, e" in said and "s: width [4, 8] -> 8" in said


def test_stand_in_data_takes_two_steps_of_the_largest_mini_batch_and_a_full_batch_its_whole_set():
    full_batch = {"dataset": "cifar10", "variants": {"sgd": {"batch_size": 128}, "fb": {"batch_size": 50000}}}
    assert standin_examples({"studies": {"fb": full_batch}}) == (256, 256)
    chaos = {"s": {"dataset": "cifar10", "batch_size": 1024}, "d": {"dataset": "digits", "batch_size": 64}}
    assert standin_examples({"studies": chaos}) == (2048, 256)
