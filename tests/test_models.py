import pytest
import torch

from chaosgrid import engine, footprint, models, recipe, train
from chaosgrid.cells import CHOICES, IMAGE_MODELS, validate_cell

# Every model on images; all but conv1d (signals only) and the patch models (images only) on signals too.
SHAPES = [(name, shape) for name in models.MODELS for shape in [(1, 8, 8), (3, 32, 32), (1, 1, 40)]
          if (name == "conv1d") == (shape[1] == 1) or (name not in IMAGE_MODELS and shape[1] == 1)]  # fmt: skip


@pytest.mark.parametrize("name, shape", SHAPES)
def test_models_take_any_input_shape(name, shape):
    torch.manual_seed(0)
    model = models.build(name, shape, 10, width=4)
    if name == "fast":
        model.fit_to_data(torch.rand(50, *shape))
    assert model(torch.rand(5, *shape)).shape == (5, 10)


@pytest.mark.parametrize("shape", [(1, 1, 40), (2, 1, 33)])
def test_conv1d_takes_signals_and_has_the_pilots_size(shape):
    model = models.build("conv1d", shape, 10, width=32)
    assert model(torch.rand(5, *shape)).shape == (5, 10)
    if shape == (1, 1, 40):
        assert sum(p.numel() for p in model.parameters()) == 9706  # research/fullbatch.md: ~9.7k


def test_width_scales_parameters():
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(models.build("resnet18", (3, 32, 32), 10, 8)) > 3 * count(
        models.build("resnet18", (3, 32, 32), 10, 4)
    )
    standard = count(models.build("resnet18", (3, 32, 32), 10, 64))
    assert 11.0e6 < standard < 11.3e6  # the usual 11.2M-parameter CIFAR ResNet-18
    assert (
        14.7e6 < count(models.build("vgg16", (3, 32, 32), 10, 64)) < 14.8e6
    )  # CIFAR VGG-16-BN, one linear layer
    assert 15.2e6 < count(models.build("vgg16_dmc", (3, 32, 32), 10, 64)) < 15.3e6  # dnn-mode-connectivity's


def test_whitening_decorrelates_patches():
    x = torch.rand(200, 3, 16, 16)
    x = x + x.roll(1, dims=3)  # correlated neighbours
    w = models.Whitening(3)
    w.fit(x)
    out = w(x)[:, :12].permute(0, 2, 3, 1).reshape(-1, 12)
    cov = torch.cov(out.T)
    assert torch.allclose(cov, torch.eye(12), atol=0.05)


def test_unknown_model_is_named():
    with pytest.raises(ValueError, match="'swin'"):
        models.build("swin", (3, 32, 32), 10, 8)


def test_every_model_is_a_choice_of_the_grid():
    assert set(models.MODELS) == set(CHOICES["model"])


@pytest.mark.parametrize("name", [m for m in models.MODELS if m != "conv1d"])
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)], ids=["digits", "cifar"])
def test_each_model_trains_a_step_alike_on_both_engines(name, shape):
    """Two runs stepped together on the loop engine and on vmap end with the same weights: per-run randomness
    (none in the forward pass: no dropout) and batch statistics never mix runs. In float64, so the engines'
    float32 rounding (which BatchNorm over a 1x1 map of 8 images amplifies to ~1e-3 in VGG-16) cannot hide a
    difference."""
    torch.manual_seed(0)
    x, y = torch.rand(16, *shape, dtype=torch.float64), torch.randint(0, 10, (16,))
    cells = [validate_cell({"model": name, "width": 2, "batch_size": 8, "epochs": 1, "warmup": 0, "init_seed": i,
                            "order_seed": i, "aug_seed": i, "augmentation": "flip_crop"}) for i in (0, 1)]  # fmt: skip
    if name == "vgg16_dmc":  # its dropout draws per run on the loop only (tests/test_random_draws.py)
        with pytest.raises(RuntimeError, match="randomness"):
            recipe.fit(engine.VmapStack([train.init_model(c, x, 10).double() for c in cells]), cells, x, y)
        return
    states = []
    for stack_type in (engine.LoopStack, engine.VmapStack):
        stack = stack_type([train.init_model(c, x, 10).double() for c in cells])
        result = recipe.fit(stack, cells, x, y)
        assert torch.isfinite(result.train_loss).all() and result.history[-1]["step"] == 2
        states.append(stack.state_dicts())
    start = train.init_model(cells[0], x, 10).double().state_dict()
    for loop, vmap in zip(*states, strict=True):
        for key, value in loop.items():
            torch.testing.assert_close(vmap[key], value, atol=1e-10, rtol=1e-9)
    assert any(not torch.equal(states[0][0][k], start[k]) for k in start)  # the step moved the weights


@pytest.mark.filterwarnings("ignore:Initializing zero-element tensors")
def test_the_size_table_planning_reads_is_the_models_own_at_widths_it_was_not_fitted_on():
    """chaosgrid/model_sizes.json (`chaosgrid model-sizes --write`) gives every built-in model's parameters,
    saved bytes per training example and forward FLOPs on every built-in dataset's input, exactly, at any width >= 2:
    checked here at width 5 on the meta device; an input a model does not take has no entry."""
    inputs = sorted({(shape, classes) for shape, classes, _, _ in footprint.DATASETS.values()})
    for name in models.MODELS:
        for shape, classes in inputs:
            try:
                measured = models.measured_sizes(name, shape, classes, 5)
            except RuntimeError:
                assert footprint.model_sizes(name, shape, classes, 5) is None, (name, shape)
                continue
            assert footprint.model_sizes(name, shape, classes, 5) == measured, (name, shape, classes)


def test_planning_estimates_a_shards_memory_and_which_runs_share_it():
    """The estimate follows the engine (all runs at once under vmap, one at a time in the loop) and the width;
    benchmarks/memory.py measures it against real jobs (0.94-1.19 of their peak)."""
    default = validate_cell({})
    small, wide = footprint.memory_mb(default, 8), footprint.memory_mb({**default, "width": 1500}, 8)
    assert small["together"] == 8 and small["mb"] < 2000 < wide["mb"]
    assert (
        wide["parameters"] == 90 * 1500**2 + 63 * 1500 + 10
        and wide["models"] > 8 * 4 * wide["parameters"] / 1e6
    )
    on_32x32 = footprint.memory_mb({**default, "dataset": "synthetic"}, 8)
    assert (
        on_32x32["together"] == 1
        and footprint.memory_mb({**default, "dataset": "synthetic"}, 8, engine="vmap")["together"] == 8
    )
    assert footprint.memory_mb({**default, "model": "my.module:net"}, 8) is None
