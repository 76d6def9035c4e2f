"""Mode-connecting curves: the parametrisation, the endpoints reproduced, and the barrier a bend removes."""

import pytest
import torch
from torch.optim.swa_utils import update_bn

from chaosgrid import curves, engine, models, recipe, train
from chaosgrid.cells import validate_cell


@pytest.fixture(scope="module")
def ends(digits):
    """Two runs (seeds 1 and 2) of `model` trained on digits, their training set, and a fresh model to hold
    curve points."""

    def make(model: str, width: int, epochs: float):
        states = []
        for seed in (1, 2):
            cell = validate_cell({"model": model, "width": width, "epochs": epochs, "init_seed": seed,
                                  "order_seed": seed, "aug_seed": seed})  # fmt: skip
            x, y = train.training_set(digits, cell)
            stack = engine.LoopStack([train.init_model(cell, x, 10)])
            recipe.fit(stack, [cell], x, y)
            states.append(stack.state_dicts()[0])
        return states[0], states[1], x, y, models.build(model, tuple(x.shape[1:]), 10, width)

    return make


def test_coefficients_sum_to_one_and_pin_the_ends():
    for kind in curves.KINDS:
        for t in torch.linspace(0, 1, 31).tolist():
            assert sum(curves.coefficients(kind, t)) == pytest.approx(1)
        assert curves.coefficients(kind, 0.0) == (1, 0, 0) and curves.coefficients(kind, 1.0) == (0, 0, 1)
    assert curves.coefficients("chain", 0.5) == (0, 1, 0)
    with pytest.raises(ValueError, match="unknown curve 'spline'"):
        curves.coefficients("spline", 0.5)


def test_every_kind_starts_as_the_straight_line():
    w1, w2 = {"w": torch.randn(5)}, {"w": torch.randn(5)}
    bend = curves.midpoint(w1, w2, ["w"])
    for t in (0.1, 0.3, 0.5, 0.8):
        line = (1 - t) * w1["w"] + t * w2["w"]
        for kind in curves.KINDS:
            torch.testing.assert_close(curves.point(kind, t, w1, bend, w2)["w"], line)


def test_t0_and_t1_reproduce_the_endpoints_once_batchnorm_is_recomputed(ends, digits):
    """The known pitfall: a curve's BatchNorm statistics are a mixture over t, so each point recomputes them;
    at t=0 and t=1 the curve then predicts exactly what its endpoint does with recomputed statistics, and
    nearly what it does with the statistics it trained with."""
    w1, w2, x, y, net = ends("cnn", 4, 3)
    cell = validate_cell({"model": "cnn", "width": 4, "epochs": 1, "warmup": 0})
    bend = curves.train_bend(net, "bezier", w1, w2, x, y, cell)
    x_test = digits.normalize(digits.x_test)
    for t, end in ((0.0, w1), (1.0, w2)):
        on_curve = curves.probabilities(curves.at(net, curves.point("bezier", t, w1, bend, w2), x), x_test)
        endpoint = models.build("cnn", tuple(x.shape[1:]), 10, 4)
        endpoint.load_state_dict(end)
        as_trained = curves.probabilities(endpoint.eval(), x_test)
        update_bn(x.split(curves.BN_BATCH), endpoint)
        assert torch.equal(on_curve, curves.probabilities(endpoint.eval(), x_test))
        assert (on_curve.argmax(1) == as_trained.argmax(1)).double().mean() > 0.97


def test_a_trained_bend_removes_the_barrier_of_the_straight_line(ends, digits):
    """The research note's CPU pilot (MLP on digits): the line's train loss rises far above its ends, the
    trained chain's and Bezier curve's stay low; ends, and the ensemble with w1 at t=0, are the endpoint's."""
    w1, w2, x, y, net = ends("mlp", 4, 20)
    cell = validate_cell({"model": "mlp", "width": 4, "epochs": 20, "schedule": "cosine", "warmup": 0})
    x_test, ts = digits.normalize(digits.x_test), [i / 10 for i in range(11)]
    worst = {}
    first = curves.probabilities(curves.at(net, {n: w1[n] for n in curves.moved(net)}, x), x_test)
    for kind in curves.KINDS:
        rows = curves.along(net, kind, w1, curves.train_bend(net, kind, w1, w2, x, y, cell), w2, x, y, x_test,
                            digits.y_test, ts, cell["weight_decay"], first)  # fmt: skip
        assert rows[0]["ensemble_err"] == rows[0]["test_err"] and rows[0]["train_loss"] > rows[0]["train_nll"]
        worst[kind] = max(r["train_nll"] for r in rows)
    print(f"max train NLL along the path: {worst}")
    assert worst["line"] > 4 * max(worst["chain"], worst["bezier"])


def test_every_recipe_option_of_a_curves_block_reaches_the_bend(ends):
    """The bend trains through the recipe: an option set in a `curves` block changes the trained bend (it was
    silently ignored when curves had a loop of their own), and training is deterministic."""
    w1, w2, x, y, net = ends("cnn", 4, 3)
    base = {"model": "cnn", "width": 4, "epochs": 0.25, "warmup": 0}
    bend = lambda **option: curves.train_bend(net, "chain", w1, w2, x, y, validate_cell({**base, **option}))
    plain = torch.cat([t.flatten() for t in bend().values()])
    assert torch.equal(plain, torch.cat([t.flatten() for t in bend().values()]))
    options = [{"optimizer": "adam", "lr": 1e-3}, {"grad_clip": 0.05}, {"micro_batch": 16}, {"label_smoothing": 0.1},
               {"nesterov": False}, {"grad_penalty": 0.5}, {"noise_additive": 0.01}, {"weight_decay": 0.05},
               {"augmentation": "flip_crop"}, {"batch_order": "replacement"}]  # fmt: skip
    for option in options:
        moved = (torch.cat([t.flatten() for t in bend(**option).values()]) - plain).abs().max()
        assert moved > 1e-4, option
