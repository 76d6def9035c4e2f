"""Seeds decide every bit, for models that draw random numbers (dropout, noise in `forward`): a run's draws
come from its own seed, so it is bit-identical trained twice, alone or beside other runs, whatever torch's
global generator holds."""

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from chaosgrid import engine, train
from chaosgrid.cells import validate_cell
from chaosgrid.cli import main

NOISY_MODEL = '''
import torch
from torch import nn


class Noisy(nn.Module):
    """Dropout, and noise drawn with torch.randn in forward (in training and evaluation alike)."""

    def __init__(self, c, classes, width):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(c, 4 * width), nn.ReLU(), nn.Dropout(0.3))
        self.head = nn.Linear(4 * width, classes)

    def forward(self, x):
        h = self.body(x)
        return self.head(h + 0.05 * torch.randn_like(h))


def net(in_shape, num_classes, width):
    return Noisy(in_shape[0] * in_shape[1] * in_shape[2], num_classes, width)
'''


@pytest.fixture
def noisy(tmp_path, monkeypatch) -> str:
    module = "noisy_" + "".join(c if c.isalnum() else "_" for c in tmp_path.name)
    (tmp_path / f"{module}.py").write_text(NOISY_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    return f"{module}:net"


def trained(cells, data, sets):
    torch.manual_seed(int(torch.randint(0, 2**31, (1,))) + 12345)  # whatever the global generator holds
    return train.train_shard(cells, data, sets, engine.Execution("loop"), checkpoints="every:1")


@pytest.mark.parametrize("model", ["vgg16_dmc", "own"])
def test_a_run_that_draws_is_the_same_twice_alone_and_beside_others(model, noisy, digits64, digits64_sets):
    model = noisy if model == "own" else model
    cells = [validate_cell({"model": model, "width": 2, "epochs": 2, "batch_size": 64, "init_seed": i,
                            "order_seed": i, "aug_seed": i}) for i in range(3)]  # fmt: skip
    together = trained(cells, digits64, digits64_sets)
    again = trained(cells, digits64, digits64_sets)
    alone = trained(cells[1:2], digits64, digits64_sets)
    for other in (again[1], alone[0]):
        assert other.train_loss == together[1].train_loss
        for step, evals in together[1].checkpoints.items():
            for key, e in evals.items():
                assert np.array_equal(e.p_true, other.checkpoints[step][key].p_true), (step, key)
        for key, e in together[1].evals.items():
            assert np.array_equal(e.p_true, other.evals[key].p_true) and e.acc == other.evals[key].acc
    assert together[0].train_loss != together[1].train_loss  # the seeds do differ


def test_the_draws_follow_the_order_seed_and_differ_between_steps(digits64):
    """Two runs with equal init seeds and different order seeds draw different dropout masks."""
    x = digits64.normalize(digits64.x_train[:32])
    cells = [
        validate_cell({"model": "vgg16_dmc", "width": 2, "init_seed": 0, "order_seed": s}) for s in (0, 1)
    ]
    stack = train.build_stack(cells, x, 10, engine.Execution("loop"))
    stack.train(True)
    draws = {}
    for step in (0, 1):
        stack.draws_from(step)
        draws[step] = stack(torch.stack([x, x]))
    assert not torch.equal(draws[0][0], draws[0][1]) and not torch.equal(draws[0][0], draws[1][0])
    stack.draws_from(0)
    assert torch.equal(stack(torch.stack([x, x])), draws[0])


def test_a_model_that_draws_trains_on_the_loop_engine_with_a_line_saying_why(noisy, digits):
    cell = validate_cell({"model": noisy, "width": 2})
    why = train.unstackable(cell, digits)
    assert why.startswith("it draws random numbers: body.3 (Dropout)")
    plain = validate_cell({"model": "cnn", "width": 2})
    assert train.unstackable(plain, digits) == ""
    torch_rand_only = train.random_draws(
        torch.nn.Sequential(torch.nn.Flatten(), RandomShift()), torch.zeros(4, 3)
    )
    assert torch_rand_only == ["its forward pass (two calls under different seeds differ)"]


class RandomShift(torch.nn.Module):
    def forward(self, x):
        return x + torch.rand_like(x)


def test_check_model_names_the_random_modules_and_passes_on_the_loop(noisy):
    done = CliRunner().invoke(main, ["check-model", noisy, "--width", "2"])
    assert done.exit_code == 0, done.output
    assert (
        "random draws: body.3 (Dropout) (each run draws from its own seed, on the loop engine)" in done.output
    )
    assert (
        "loop: 3 runs together equal each run alone" in done.output and "vmap: cannot stack it" in done.output
    )
