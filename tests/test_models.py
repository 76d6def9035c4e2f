import pytest
import torch

from chaosgrid import models

# Every model on images; all but conv1d (signals only) and fast (2x2 whitening: images only) on signals too.
SHAPES = [(name, shape) for name in models.MODELS for shape in [(1, 8, 8), (3, 32, 32), (1, 1, 40)]
          if (name == "conv1d") == (shape[1] == 1) or (name != "fast" and shape[1] == 1)]  # fmt: skip


@pytest.mark.parametrize("name, shape", SHAPES)
def test_models_take_any_input_shape(name, shape):
    torch.manual_seed(0)
    model = models.build(name, shape, 10, width=4)
    if name == "fast":
        model.whiten.fit(torch.rand(50, *shape))
    assert model(torch.rand(5, *shape)).shape == (5, 10)


@pytest.mark.parametrize("shape", [(1, 1, 40), (2, 1, 33)])
def test_conv1d_takes_signals_and_has_the_pilots_size(shape):
    model = models.build("conv1d", shape, 10, width=32)
    assert model(torch.rand(5, *shape)).shape == (5, 10)
    if shape == (1, 1, 40):
        assert sum(p.numel() for p in model.parameters()) == 9706  # research/fullbatch.md: ~9.7k


def test_width_scales_parameters():
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(models.build("resnet18", (3, 32, 32), 10, 8)) > 3 * count(models.build("resnet18", (3, 32, 32), 10, 4))
    standard = count(models.build("resnet18", (3, 32, 32), 10, 64))
    assert 11.0e6 < standard < 11.3e6  # the usual 11.2M-parameter CIFAR ResNet-18
    assert (
        14.7e6 < count(models.build("vgg16", (3, 32, 32), 10, 64)) < 14.8e6
    )  # CIFAR VGG-16-BN, one linear layer


def test_whitening_decorrelates_patches():
    x = torch.rand(200, 3, 16, 16)
    x = x + x.roll(1, dims=3)  # correlated neighbours
    w = models.Whitening(3)
    w.fit(x)
    out = w(x)[:, :12].permute(0, 2, 3, 1).reshape(-1, 12)
    cov = torch.cov(out.T)
    assert torch.allclose(cov, torch.eye(12), atol=0.05)


def test_unknown_model_is_named():
    with pytest.raises(ValueError, match="'vit'"):
        models.build("vit", (3, 32, 32), 10, 8)
