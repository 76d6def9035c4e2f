import pytest
import torch

from chaosgrid import models


@pytest.mark.parametrize("name", list(models.MODELS))
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
def test_models_take_any_input_shape(name, shape):
    torch.manual_seed(0)
    model = models.build(name, shape, 10, width=4)
    if name == "fast":
        model.whiten.fit(torch.rand(50, *shape))
    assert model(torch.rand(5, *shape)).shape == (5, 10)


def test_width_scales_parameters():
    count = lambda m: sum(p.numel() for p in m.parameters())
    assert count(models.build("resnet18", (3, 32, 32), 10, 8)) > 3 * count(models.build("resnet18", (3, 32, 32), 10, 4))
    standard = count(models.build("resnet18", (3, 32, 32), 10, 64))
    assert 11.0e6 < standard < 11.3e6  # the usual 11.2M-parameter CIFAR ResNet-18


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
