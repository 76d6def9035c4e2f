import json

import pytest

from chaosgrid import grid
from chaosgrid.grid import GridError, Shard, cell_id, expand_study, validate_cell


def test_cell_id_is_stable_across_order_and_number_spelling():
    a = validate_cell({"lr": 0.1, "width": 8, "epochs": 2})
    b = validate_cell({"epochs": 2.0, "width": 8.0, "lr": 0.1})
    assert cell_id(a) == cell_id(b)
    assert cell_id(a) != cell_id(validate_cell({"lr": 0.2, "width": 8, "epochs": 2}))
    assert len(cell_id(a)) == 12


def test_format_value_is_canonical():
    assert grid.format_value(0.1) == "0.1"
    assert grid.format_value(1.0) == "1"
    assert grid.format_value(True) == "true"
    assert grid.format_value("flip_crop") == "flip_crop"


@pytest.mark.parametrize(
    "params, named",
    [
        ({"model": "vit"}, "model"),
        ({"lr": -0.1}, "lr"),
        ({"lr": 0}, "lr"),
        ({"data_fraction": 0}, "data_fraction"),
        ({"data_fraction": 1.5}, "data_fraction"),
        ({"label_noise": 1.0}, "label_noise"),
        ({"width": 2.5}, "width"),
        ({"width": "wide"}, "width"),
        ({"nesterov": 1}, "nesterov"),
        ({"learning_rate": 0.1}, "learning_rate"),
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


@pytest.mark.parametrize("source, varied", [("all", 3), ("init", 1), ("order", 1), ("aug", 1)])
def test_seed_sources_vary_only_their_seed(source, varied):
    seeds = [grid.seeds_for(source, i) for i in range(5)]
    changing = [k for k in grid.SEED_KEYS if len({s[k] for s in seeds}) > 1]
    assert len(changing) == varied


def test_shard_spec_round_trips():
    shard = expand_study("s", {"lr": [0.1], "seeds": [3, 5], "shifts": ["jpeg"], "severities": [1, 3]})[0]
    again = Shard.from_json(shard.to_json())
    assert again.cells() == shard.cells() and again.shifts == ("jpeg",) and again.severities == (1, 3)
    assert json.loads(shard.to_json())["key"] == "lr~0.1/seeds~3-5"


@pytest.mark.parametrize(
    "study, named",
    [
        ({"shifts": ["fog"], "severities": [1]}, "fog"),
        ({"shifts": ["jpeg"], "severities": [6]}, "severity"),
        ({"shifts": ["cifar10_1"]}, "cifar10_1"),
        ({"lr": []}, "lr"),
        ({"init_seed": 3}, "init_seed"),
    ],
)
def test_bad_studies_are_named(study, named):
    with pytest.raises(GridError, match=named):
        expand_study("s", study)


def test_grid_corruption_names_match_shift_functions():
    from chaosgrid.shifts import CORRUPTIONS

    assert set(grid.CORRUPTION_NAMES) == set(CORRUPTIONS)
