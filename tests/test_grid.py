import json
from pathlib import Path

import pytest

from chaosgrid import cells, checkpoints, evalsets
from chaosgrid.cells import GridError, cell_id, validate_cell
from chaosgrid.plan.blocks import (
    CURVE_KINDS,
    PAPER_PLANES,
    plane_spec,
    study_axes,
    triplets_key,
    triplets_spec,
)
from chaosgrid.plan.seeds import parse_seed_text
from chaosgrid.plan.specs import CurveJob, Shard
from chaosgrid.plan.studies import Shards, expand_curves, expand_studies, expand_study

SCHEMA = Path(__file__).resolve().parents[1] / "workflow/schemas/config.schema.yaml"


def test_cell_id_is_stable_across_order_and_number_spelling():
    a = validate_cell({"lr": 0.1, "width": 8, "epochs": 2})
    b = validate_cell({"epochs": 2.0, "width": 8.0, "lr": 0.1})
    assert cell_id(a) == cell_id(b)
    assert cell_id(a) != cell_id(validate_cell({"lr": 0.2, "width": 8, "epochs": 2}))
    assert len(cell_id(a)) == 12


def test_format_value_is_canonical():
    assert cells.format_value(0.1) == "0.1"
    assert cells.format_value(1.0) == "1"
    assert cells.format_value(True) == "true"
    assert cells.format_value("flip_crop") == "flip_crop"


@pytest.mark.parametrize(
    "params, named",
    [
        ({"model": "swin"}, "model"),
        ({"lr": -0.1}, "lr"),
        ({"lr": 0}, "lr"),
        ({"data_fraction": 0}, "data_fraction"),
        ({"data_fraction": 1.5}, "data_fraction"),
        ({"label_noise": 1.0}, "label_noise"),
        ({"width": 2.5}, "width"),
        ({"width": "wide"}, "width"),
        ({"nesterov": 1}, "nesterov"),
        ({"learning_rate": 0.1}, "learning_rate"),
        ({"optimizer": "lion"}, "optimizer"),
        ({"schedule": "onecycle"}, "schedule"),
        ({"grad_clip": -1.0}, "grad_clip"),
        ({"optimizer": "sam", "sam_rho": -0.05}, "sam_rho"),
        ({"batch_size": 32, "micro_batch": 64}, "micro_batch"),
        ({"batch_order": "sorted"}, "batch_order"),
        ({"penalty_method": "central"}, "penalty_method"),
        ({"noise_additive": -0.01}, "noise_additive"),
        ({"schedule": "fge", "lr": 0.05, "lr_min": 0.1}, "lr_min"),
        ({"init_from": "../other"}, "init_from"),
        ({"init_epoch": 48}, "init_epoch"),
        ({"init_from": "base", "init_epoch": -1}, "init_epoch"),
    ],
)
def test_bad_parameters_are_named(params, named):
    with pytest.raises(GridError, match=named):
        validate_cell(params)


def test_expand_study_axes_seeds_and_keys():
    study = {"lr": [0.05, 0.1], "width": [8, 16], "epochs": 3, "seeds": 10, "shard_size": 4}
    shards = expand_study("s", study)
    assert len(shards) == 2 * 2 * 3  # 3 seed blocks: 0-3, 4-7, 8-9
    assert shards[0].key == "width~8/lr~0.05/seeds~0-3"  # axes in canonical order, not YAML order
    assert shards[2].key == "width~8/lr~0.05/seeds~8-9"
    cells = [c for s in shards for c in s.cells()]
    assert len({cell_id(c) for c in cells}) == 40


def test_adding_an_axis_value_keeps_existing_keys():
    before = {s.key for s in expand_study("s", {"lr": [0.05, 0.1], "seeds": 4})}
    after = {s.key for s in expand_study("s", {"lr": [0.05, 0.1, 0.2], "seeds": 4})}
    assert before < after and after - before == {"lr~0.2/seeds~0-3"}


def test_a_growing_study_adds_seed_blocks_and_keeps_its_finished_shards():
    keys = lambda seeds, done=(): [s.key for s in expand_study("s", {"lr": [0.1], "seeds": seeds}, done)]
    assert keys(8) == ["lr~0.1/seeds~0-7"] and keys(20)[1:] == ["lr~0.1/seeds~8-15", "lr~0.1/seeds~16-19"]
    grown = keys(16, keys(12))  # 0-7 and the partial 8-11 done: completed by 12-15, nothing renamed
    assert grown == ["lr~0.1/seeds~0-7", "lr~0.1/seeds~8-11", "lr~0.1/seeds~12-15"]
    assert keys(32, grown)[3:] == ["lr~0.1/seeds~16-23", "lr~0.1/seeds~24-31"]
    assert keys(12, keys(16)) == keys(12)  # fewer seeds: a finished shard holding unwanted seeds is not used
    resized = [
        s.key for s in expand_study("s", {"lr": [0.1], "seeds": 24, "shard_size": 8}, ["lr~0.1/seeds~0-15"])
    ]
    assert resized == [
        "lr~0.1/seeds~0-15",
        "lr~0.1/seeds~16-23",
    ]  # made with shards of 16: kept, not re-trained
    assert keys(16, ["lr~0.2/seeds~8-11", "lr~0.1/seeds~x"]) == keys(16)  # another grid point's, or no seeds
    listed = [s.key for s in expand_study("s", {"seeds": [0, 2, 3, 9], "shard_size": 8})]
    assert listed == ["seeds~0,2-3", "seeds~9-9"]
    assert [parse_seed_text(k.partition("~")[2]) for k in listed] == [(0, 2, 3), (9,)]


@pytest.mark.parametrize("source, varied", [("all", 3), ("init", 1), ("order", 1), ("aug", 1)])
def test_seed_sources_vary_only_their_seed(source, varied):
    seeds = [cells.seeds_for(source, i) for i in range(5)]
    changing = [k for k in cells.SEED_KEYS if len({s[k] for s in seeds}) > 1]
    assert len(changing) == varied


def test_shard_spec_round_trips():
    shard = expand_study("s", {"lr": [0.1], "seeds": [3, 5], "shifts": ["jpeg"], "severities": [1, 3]})[0]
    again = Shard.from_json(shard.to_json())
    assert again.cells() == shard.cells() and again.shifts == ("jpeg",) and again.severities == (1, 3)
    assert json.loads(shard.to_json())["key"] == "lr~0.1/seeds~3,5"


@pytest.mark.parametrize(
    "study, named",
    [
        ({"shifts": ["fog"], "severities": [1]}, "fog"),
        ({"shifts": ["jpeg"], "severities": [6]}, "severity"),
        ({"shifts": ["cifar10_1"]}, "cifar10_1"),
        (
            {"dataset": "cifar10", "shifts": ["cifar10c_fogg"], "severities": [1]},
            "did you mean 'cifar10c_fog'",
        ),
        ({"dataset": "cifar10", "shifts": ["cifar10c_jpeg"], "severities": [1]}, "no corruption 'jpeg'"),
        ({"lr": []}, "lr"),
        ({"init_seed": 3}, "init_seed"),
    ],
)
def test_bad_studies_are_named(study, named):
    with pytest.raises(GridError, match=named):
        expand_study("s", study)


def test_grid_corruption_names_match_shift_functions():
    from chaosgrid.shifts import CORRUPTIONS

    assert set(evalsets.CORRUPTION_NAMES) == set(CORRUPTIONS)


# The published defaults, frozen: ids hash only values that differ from these, so none may ever change.
PUBLISHED = {
    "dataset": "digits", "model": "cnn", "width": 16, "epochs": 12.0, "batch_size": 64, "lr": 0.05,
    "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4, "label_smoothing": 0.0, "schedule": "linear",
    "warmup": 0.1, "augmentation": "none", "data_fraction": 1.0, "label_noise": 0.0, "perturbation": "none",
    "precision": "fp32", "tta": "none", "seed_source": "all", "init_seed": 0, "order_seed": 0, "aug_seed": 0,
    # added with the recipe engine, each "off"
    "micro_batch": 0, "batch_order": "shuffle", "optimizer": "sgd", "sam_rho": 0.05, "cycles": 1, "lr_min": 0.0,
    "grad_penalty": 0.0, "penalty_method": "fd", "penalty_eps": 0.01, "grad_clip": 0.0, "noise_additive": 0.0,
    "noise_multiplicative": 0.0, "init_from": "",
    # added with study 2 (full batch), each "off"
    "variant": "", "decay_length": 0.0, "augment_copies": 0, "drop_last": False,
    # added with study 3 (ensembles), "off"
    "init_epoch": 0.0,
    # added with study 4 (decision regions), "off"
    "label_noise_per_class": False,
    # added with your own training code, "off"
    "trainer": "",
}  # fmt: skip


def test_published_defaults_never_change():
    """A new parameter may be added (add it here too, at its "off" value); none may change or vanish."""
    assert cells.CELL_DEFAULTS == PUBLISHED


def test_a_new_default_off_parameter_changes_no_id_key_or_spec(monkeypatch):
    from pathlib import Path

    import yaml

    configs = sorted(Path(__file__).parents[1].glob("config/*.yaml"))
    declared = {
        f"{p.stem}.{n}": s for p in configs for n, s in yaml.safe_load(p.read_text())["studies"].items()
    }
    before = {name: expand_study(name, s) for name, s in declared.items()}
    monkeypatch.setitem(
        cells.PARAMETERS, "grad_clip_v2", cells.Parameter(0.0, "gradient operations", "new", "[0, inf)")
    )
    monkeypatch.setitem(cells.CELL_DEFAULTS, "grad_clip_v2", 0.0)
    after = {name: expand_study(name, s) for name, s in declared.items()}
    assert sum(len(b) for b in before.values()) > 100
    for name in declared:
        assert [s.key for s in before[name]] == [s.key for s in after[name]]
        assert [s.to_json() for s in before[name]] == [s.to_json() for s in after[name]]
        assert [cell_id(c) for s in before[name] for c in s.cells()] == [
            cell_id(c) for s in after[name] for c in s.cells()
        ]
        assert all("grad_clip_v2" in c for s in after[name] for c in s.cells())  # the runs table records it


def test_a_non_default_value_changes_the_id():
    assert cell_id(validate_cell({"grad_clip": 0.25})) != cell_id(validate_cell({}))
    assert cells.identity(validate_cell({"grad_clip": 0.25, "lr": 0.05})) == {"grad_clip": 0.25}


def test_duplicated_axis_values_are_rejected():
    with pytest.raises(GridError, match="'lr' lists 0.1 more than once"):
        expand_study("s", {"lr": [0.1, 0.1]})
    with pytest.raises(GridError, match="'width' lists 8"):
        expand_study("s", {"width": [8, 8.0]})


def test_init_from_names_the_source_shard_and_makes_it_keep_weights():
    declared = {
        "base": {"lr": [0.05, 0.1], "seeds": 4, "shard_size": 2},
        "fge": {
            "lr": [0.05, 0.1],
            "schedule": "fge",
            "cycles": 2,
            "init_from": "base",
            "seeds": 4,
            "shard_size": 2,
        },
    }
    shards = expand_studies(declared)
    follower = shards["fge", "lr~0.1/seeds~2-3"]
    assert follower.init_key == "lr~0.1/seeds~2-3"
    assert shards["base", "lr~0.1/seeds~2-3"].weights and not follower.weights
    assert (
        '"init_key"' in follower.to_json()
        and '"weights": true' in shards["base", "lr~0.1/seeds~0-1"].to_json()
    )
    with pytest.raises(GridError, match="init_from 'nope'"):
        expand_studies({"a": {"init_from": "nope"}})
    with pytest.raises(GridError, match="no shards with lr=0.2 that hold seeds 0"):
        expand_studies({"b": {"lr": [0.1]}, "c": {"lr": [0.2], "init_from": "b"}})


def test_runs_that_start_from_a_grown_study_follow_its_shards():
    """A source trained with 12 seeds (blocks 0-7 and 8-11) grown to 16 keeps 8-11 and adds 12-15: a study
    starting from it, new at 16 seeds, takes its seeds 8-15 in the same two shards, each from its source.
    A dependent that grew when its source did not starts both its partial blocks from the source's 8-15."""
    declared = {"src": {"seeds": 16}, "dep": {"seeds": 16, "init_from": "src", "epochs": 1}}
    shards = expand_studies(declared, {"src": ["seeds~0-7", "seeds~8-11"]})
    assert sorted(k for n, k in shards if n == "dep") == ["seeds~0-7", "seeds~12-15", "seeds~8-11"]
    assert all(s.init_key == s.key for (n, _), s in shards.items() if n == "dep")
    again = expand_studies(declared, {"src": ["seeds~0-7", "seeds~8-11", "seeds~12-15"],
                                              "dep": ["seeds~0-7", "seeds~8-11", "seeds~12-15"]})  # fmt: skip
    assert {k for n, k in again if n == "dep"} == {"seeds~0-7", "seeds~8-11", "seeds~12-15"}
    grown_dependent = expand_studies(declared, {"dep": ["seeds~0-7", "seeds~8-11"]})  # source: 8-15
    assert {k: s.init_key for (n, k), s in grown_dependent.items() if n == "dep"} == {
        "seeds~0-7": "seeds~0-7", "seeds~8-11": "seeds~8-15", "seeds~12-15": "seeds~8-15"}  # fmt: skip


@pytest.mark.parametrize("declared, canonical", [("final", "final"), ("snapshots", "snapshots"), (2, "every:2"),
                                                 (0.5, "every:0.5")])  # fmt: skip
def test_checkpoints_declarations(declared, canonical):
    assert expand_study("s", {"checkpoints": declared})[0].checkpoints == canonical
    shard = expand_study("s", {"checkpoints": declared})[0]
    assert Shard.from_json(shard.to_json()).checkpoints == canonical


def test_variants_are_named_recipes_on_their_own_axis():
    study = {"lr": [0.1, 0.2], "epochs": 3, "seeds": 2,
             "variants": {"sgd": {}, "full": {"batch_size": 5000, "micro_batch": 100, "epochs": 30}}}  # fmt: skip
    shards = expand_study("s", study)
    assert [s.key for s in shards] == ["variant~sgd/lr~0.1/seeds~0-1", "variant~sgd/lr~0.2/seeds~0-1",
                                       "variant~full/lr~0.1/seeds~0-1", "variant~full/lr~0.2/seeds~0-1"]  # fmt: skip
    full = shards[2].base
    assert (full["variant"], full["batch_size"], full["epochs"], full["lr"]) == ("full", 5000, 30.0, 0.1)
    assert shards[0].base["epochs"] == 3.0 and shards[0].base["batch_size"] == 64
    assert study_axes(study) == ["variant", "lr"]


@pytest.mark.parametrize("variants, message", [
    ({"a": {"lr": 0.3}}, "sets 'lr'"),  # an axis of the study
    ({"a": {"momentum": [0.5, 0.9]}}, "sets 'momentum'"),  # a list: axes belong to the study
    ({"a": {"seeds": 3}}, "sets 'seeds'"),
    ({"a b": {}}, "variant 'a b'"),
    ({"a": {"grad_clip": -1}}, "variant 'a': parameter 'grad_clip' is out of range"),
    ({"a": {"optimiser": "sgd"}}, "variant 'a': unknown parameter 'optimiser'"),
])  # fmt: skip
def test_bad_variants_are_named(variants, message):
    with pytest.raises(GridError, match=message):
        expand_study("s", {"lr": [0.1, 0.2], "variants": variants})


def test_signal_datasets_take_no_image_corruptions_and_conv1d_takes_only_signals():
    with pytest.raises(GridError, match="1-D signals"):
        expand_study(
            "s", {"dataset": "mnist1d", "model": "conv1d", "shifts": ["contrast"], "severities": [1]}
        )
    with pytest.raises(GridError, match="'conv1d'"):
        validate_cell({"model": "conv1d"})
    for patches in cells.IMAGE_MODELS:
        with pytest.raises(GridError, match=f"'{patches}', whose patches need images"):
            validate_cell({"model": patches, "dataset": "mnist1d"})
    with pytest.raises(GridError, match="augment_copies"):
        validate_cell({"augment_copies": 4})
    assert validate_cell({"dataset": "mnist1d", "model": "mlp"})["model"] == "mlp"


@pytest.mark.parametrize("checkpoints", ["evenly:0", "evenly:1.5", "every:x", "sometimes"])
def test_bad_checkpoints_are_named(checkpoints):
    with pytest.raises(GridError, match="checkpoints is"):
        expand_study("s", {"checkpoints": checkpoints})


ENSEMBLE_STUDIES = {
    "ind": {"lr": [0.05, 0.1], "seeds": 6, "shard_size": 4, "checkpoints": 9.6,
            "curves": {"pairs": 2, "epochs": 3, "lr": 0.01}},
    "fge": {"lr": [0.05, 0.1], "seeds": 6, "shard_size": 4, "init_from": "ind", "init_epoch": 9.6},
    "sse": {"schedule": "cyclic_cosine", "cycles": 3, "seeds": 2, "ensembles": {"fge": "sse_fge"},
            "probabilities": True},
    "sse_fge": {"init_from": "sse", "seeds": 2, "probabilities": True},
}  # fmt: skip


def test_curves_join_pairs_of_runs_at_every_grid_point_and_read_the_shards_holding_them():
    shards = Shards(ENSEMBLE_STUDIES, {}, None)
    jobs = expand_curves(ENSEMBLE_STUDIES, shards)
    assert sorted(jobs) == [
        ("ind", f"lr~{lr}/pair~{a}-{b}") for lr in ("0.05", "0.1") for a, b in ((0, 1), (2, 3))
    ]
    job = jobs["ind", "lr~0.1/pair~2-3"]
    assert job.shards == ("lr~0.1/seeds~0-3", "lr~0.1/seeds~0-3") and job.seeds == (2, 3) and job.points == 31
    assert job.kinds == CURVE_KINDS and (job.cell["lr"], job.cell["epochs"], job.cell["init_seed"]) == (
        0.01,
        3,
        2,
    )
    again = CurveJob.from_json(job.to_json())
    assert (again.cell, again.seeds, again.kinds, again.key) == (job.cell, job.seeds, job.kinds, job.key)
    # every study whose runs are joined or ensembled keeps its weights; one that is not, does not
    assert all(s.weights for (name, _), s in shards.items() if name in ("ind", "sse", "sse_fge"))
    assert not any(s.weights for (name, _), s in shards.items() if name == "fge")
    assert not any(s.weights for s in expand_studies({"plain": {"seeds": 2}}).values())


@pytest.mark.parametrize("curves, message", [
    ({"pairs": 4}, "1..3 pairs of its 6 seeds"), ({"kinds": ["spline"]}, "kinds"), ({"width": 8}, "'width'"),
    ({"init_seed": 3}, "'init_seed'"), ({"learning_rate": 0.1}, "'learning_rate'"), ({"lr": -1}, "'lr'"),
    ({"tta": "flip"}, "'tta', which a curve's training does not use"),
    ({"perturbation": "weight"}, "'perturbation'"), ({"seed_source": "init"}, "'seed_source'"),
])  # fmt: skip
def test_bad_curves_blocks_are_named(curves, message):
    declared = {"ind": {"seeds": 6, "curves": curves}}
    with pytest.raises(GridError, match=message):
        expand_curves(declared, Shards(declared, {}, None))


def test_bad_ensembles_blocks_are_named():
    with pytest.raises(GridError, match="ensembles names 'swa'"):
        expand_studies({"ind": {"ensembles": {"swa": "ind"}, "probabilities": True}})
    with pytest.raises(GridError, match="ensembles fge: 'nope'"):
        expand_studies({"ind": {"ensembles": {"fge": "nope"}, "probabilities": True}})
    with pytest.raises(GridError, match="'sse' has axes lr"):
        expand_studies(
            {
                "ind": {"ensembles": {"sse": "sse"}, "probabilities": True},
                "sse": {"lr": [0.1, 0.2], "probabilities": True},
            }
        )
    with pytest.raises(GridError, match="sse_last is -1"):
        expand_studies({"ind": {"ensembles": {"sse_last": -1}, "probabilities": True}})
    with pytest.raises(GridError, match="set `probabilities: true` in study 'sse'"):
        expand_studies({"ind": {"ensembles": {"sse": "sse"}, "probabilities": True}, "sse": {}})


def test_a_planes_block_reaches_the_shard_spec_only_where_it_changes_the_planes():
    """The default planes keep their shards' specs (nothing re-runs); the paper's anchors and grid travel in
    the spec, and the analysis-only keys (connectivity, epoch, compare, by) do not."""
    plain = expand_study("s", {"shifts": ["planes"]})[0]
    assert "planes" not in json.loads(plain.to_json()) and plain.plane_spec() == plane_spec(None)
    paper = expand_study("s", {"shifts": ["planes"], "planes": {**PAPER_PLANES, "compare": "model"}})[0]
    spec = json.loads(paper.to_json())["planes"]
    assert spec == {"triplets": 500, "images": "test", "resolution": 50, "margin": 0.1}
    assert Shard.from_json(paper.to_json()).plane_spec()["resolution"] == 50
    assert triplets_key(paper.plane_spec()) == "test-distinct-500"
    assert triplets_spec("test-distinct-500")["triplets"] == 500
    for bad, named in (
        ({"connectivity": 6}, "connectivity"),
        ({"images": "val"}, "images"),
        ({"size": 5}, "size"),
    ):
        with pytest.raises(GridError, match=named):
            expand_study("s", {"shifts": ["planes"], "planes": bad})


@pytest.mark.parametrize(
    "config, line",
    [
        (
            {"studies": {"s": {"weight_decai": 0.1}}},
            "config studies.s: unknown key 'weight_decai'; did you mean 'weight_decay'?",
        ),
        (
            {"studies": {"s": {"learning_rate": 0.1}}},
            "config studies.s: unknown key 'learning_rate'; did you mean 'lr'?",
        ),
        ({"study": {"s": {}}}, "config top level: unknown key 'study'; did you mean 'studies'?"),
        ({"studies": {"s": {"lr": "fast"}}}, "config studies.s.lr: 'fast' is not valid (peak learning rate"),
        (
            {"studies": {"s": {"until": {"delta": 1}}}},
            "config studies.s.until: 'compare' is a required property",
        ),
    ],
)
def test_a_config_that_breaks_the_schema_is_named_in_one_line_with_the_closest_key(config, line):
    from chaosgrid.configs import schema_problem

    found = schema_problem(config, SCHEMA)
    assert found.startswith(line) and "\n" not in found, found
    assert schema_problem({"studies": {"s": {"lr": [0.1, "5e-3"]}}}, SCHEMA) is None


def test_an_init_epoch_the_source_does_not_keep_is_refused_at_planning():
    source = {"epochs": 2, "seeds": 2}
    with pytest.raises(
        GridError, match=r"init_epoch 1: study 'src' keeps no checkpoint at that epoch \(it keeps epochs 2\)"
    ):
        expand_studies({"src": source, "dep": {"init_from": "src", "init_epoch": 1, "seeds": 2}})
    for kept in (1, "evenly:2"):
        expand_studies({"src": {**source, "checkpoints": kept}, "dep": {"init_from": "src", "init_epoch": 1,
                                                                               "seeds": 2}})  # fmt: skip
    assert (
        checkpoints.epochs("every:0.5", 2.0) == [0.5, 1.0, 1.5, 2.0]
        and checkpoints.epochs("snapshots", 2) is None
    )


def test_the_reports_overview_counts_the_shards_a_grown_study_kept():
    """12 seeds trained as blocks 0-7 and 8-11, then grown to 16: the workflow keeps 8-11 and adds 12-15, and
    the report's overview counts those 3 shard jobs, not the 2 a fresh 16-seed study would have."""
    from chaosgrid.report_tables import study_overview

    overview = lambda finished: dict(study_overview("grow", {"seeds": 16}, finished).values.tolist())
    assert overview(["seeds~0-7", "seeds~8-11"])["shard jobs"] == "3 (4-8 runs each)"
    assert overview([])["shard jobs"] == "2 (8 runs each)"


def test_the_overview_names_a_users_dataset_by_file_and_lists_no_recipe_defaults_for_a_trainer(
    tmp_path, monkeypatch
):
    """A study with a trainer and an .npz: its report overview shows the file's name (not a mapping with an
    absolute path) and says the recipe's defaults do not apply."""
    import numpy as np

    from chaosgrid.report_tables import study_overview

    monkeypatch.chdir(tmp_path)
    npz = tmp_path / "lab_data.npz"
    np.savez(npz, x_train=np.zeros((4, 1, 2, 2)), y_train=np.arange(4) % 2, x_test=np.zeros((2, 1, 2, 2)),
             y_test=np.arange(2))  # fmt: skip
    (tmp_path / "lab_trainer.py").write_text("def run(params, data):\n    return {}\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    rows = dict(
        study_overview("own", {"dataset": {"npz": str(npz)}, "trainer": "lab_trainer:run", "seeds": 2}).values
    )
    assert rows["dataset"] == "lab_data.npz (your .npz file)" and str(tmp_path) not in "".join(rows.values())
    assert rows["every other parameter"] == "set by your trainer (chaosgrid's recipe defaults do not apply)"
    recipe = dict(study_overview("r", {"seeds": 2}).values)
    assert "lr 0.05" in recipe["every other parameter (chaosgrid's default)"]
