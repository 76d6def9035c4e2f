import pytest
import torch

from chaosgrid import data, evalsets, shifts


@pytest.fixture(scope="module")
def images():
    return data.synthetic_images(64, seed=3)[0]


@pytest.mark.parametrize("name", list(shifts.CORRUPTIONS))
def test_corruptions_are_deterministic_and_grow_with_severity(images, name):
    fn = shifts.CORRUPTIONS[name]
    distances = []
    for severity in range(1, 6):
        out = fn(images, severity).clamp(0, 1)
        assert out.shape == images.shape
        assert torch.equal(out, fn(images, severity).clamp(0, 1))
        distances.append((out - images).pow(2).mean().item())
    assert distances[0] > 0
    assert distances[-1] > distances[0]


def test_eval_sets_clean_first_and_normalised(digits):
    pairs = evalsets.eval_pairs(["jpeg", "pixelate"], [1, 5])
    assert pairs == [("clean", 0), ("jpeg", 1), ("jpeg", 5), ("pixelate", 1), ("pixelate", 5)]
    sets = shifts.eval_sets(digits, pairs)
    x, y = sets["clean", 0]
    assert torch.allclose(x, digits.normalize(digits.x_test)) and torch.equal(y, digits.y_test)
    assert not torch.equal(sets["jpeg", 5][0], x)
