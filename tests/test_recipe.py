"""The recipe engine: per-run gradient operations, accumulation, penalty, schedules, batch orders."""

import math

import pytest
import torch

from chaosgrid import (
    checkpoints,
    engine,
    evaluation,
    footprint,
    optimizers,
    recipe,
    sampling,
    schedules,
    train,
)
from chaosgrid.cells import validate_cell


def run_cells(n, **params):
    return [validate_cell({**params, "init_seed": i, "order_seed": i, "aug_seed": i}) for i in range(n)]


def fitted_state(stack_type, cells, x, y):
    """Fit `cells` together in one stack of `stack_type` in x's dtype; return (FitResult, one flat weight
    vector per run)."""
    stack = stack_type([train.init_model(c, x, 10).to(x.dtype) for c in cells])
    result = recipe.fit(stack, cells, x, y)
    flat = [torch.cat([t.flatten().to(x.dtype) for t in state.values()]) for state in stack.state_dicts()]
    return result, flat


# Each option is on: clipping binds (clip below the gradient norm), the penalty runs per micro-batch, noise is
# large enough to change the run, Adam and SAM replace SGD.
OPTIONS = {
    "clip": {"grad_clip": 0.05},
    "penalty": {"grad_penalty": 0.5, "micro_batch": 16, "lr": 0.2},
    "penalty_autograd": {"grad_penalty": 0.5, "penalty_method": "autograd"},
    "noise_additive": {"noise_additive": 0.01},
    "noise_multiplicative": {"noise_multiplicative": 0.5},
    "adam": {"optimizer": "adam", "lr": 1e-3},
    "adamw": {"optimizer": "adamw", "lr": 1e-3, "weight_decay": 0.05},
    "sam": {"optimizer": "sam", "sam_rho": 0.1},
}


@pytest.mark.parametrize("stack_type", [engine.LoopStack, engine.VmapStack], ids=["loop", "vmap"])
@pytest.mark.parametrize("option", list(OPTIONS))
def test_runs_stepped_together_equal_each_run_alone(digits64, stack_type, option):
    """The per-run operations never mix runs: K=3 together gives each run's weights as if it trained alone,
    and the option really changes training (so the equality is not vacuous).

    In float64: vmap runs K=3 as grouped kernels and K=1 as plain ones, and float32 rounding differs by kernel
    (and by CPU: oneDNN's AVX-512 and AVX2 convolutions round differently); the finite-difference penalty
    divides by its step and 6 steps amplified that to 4.4e-4 under AVX-512 (3,700x float32's epsilon).
    Measured in float64 under AVX2 and AVX512_CORE, 1 and 2 threads: at most 2.9e-15 (penalty, vmap), 0 for
    most options; 1e-10 leaves 100x room over float64's epsilon times that amplification.
    """
    cells = run_cells(3, width=4, epochs=0.25, augmentation="flip_crop", **OPTIONS[option])
    x, y = train.training_set(digits64, cells[0])
    together, flat = fitted_state(stack_type, cells, x, y)
    for r, cell in enumerate(cells):
        alone, (alone_flat,) = fitted_state(stack_type, [cell], x, y)
        torch.testing.assert_close(flat[r], alone_flat, atol=1e-10, rtol=0)
        assert abs(float(together.train_loss[r]) - float(alone.train_loss[0])) < 1e-10
    plain = run_cells(1, width=4, epochs=0.25, augmentation="flip_crop",
                      lr=OPTIONS[option].get("lr", 0.05))  # fmt: skip
    _, (plain_flat,) = fitted_state(stack_type, plain, x, y)
    assert (plain_flat - flat[0]).abs().max() > 1e-3
    if option == "clip":
        assert (together.clipped > 0.5).all()


def test_per_run_norms_and_scaling_never_mix_runs():
    """Run 1's gradient is 100x run 0's: each gets its own norm, and scaling run 1 leaves run 0 untouched."""
    modules = [torch.nn.Linear(3, 2) for _ in range(2)]
    for stack in (engine.LoopStack(modules), engine.VmapStack(modules)):
        grads = [torch.ones_like(p) for p in stack.params]
        for i, g in enumerate(grads):
            g.mul_(stack.per_run(torch.tensor([1.0, 100.0]), i))
        norms = engine.norms(stack, grads)
        torch.testing.assert_close(norms, torch.tensor([8**0.5, 100 * 8**0.5]))
        engine.scale_(stack, grads, torch.tensor([1.0, 0.01]))
        torch.testing.assert_close(engine.norms(stack, grads), torch.tensor([8**0.5, 8**0.5]))


def test_accumulated_micro_batches_equal_one_batch(digits64):
    """Without BatchNorm, 4 micro-batches of 16 take exactly the step one batch of 64 takes (float64: a
    batch of 16 and one of 64 may use differently blocked kernels)."""
    whole = run_cells(2, model="mlp", width=2, epochs=0.5, augmentation="flip_crop")
    micro = run_cells(2, model="mlp", width=2, epochs=0.5, augmentation="flip_crop", micro_batch=16)
    x, y = train.training_set(digits64, whole[0])
    for stack_type in (engine.LoopStack, engine.VmapStack):
        a, flat_a = fitted_state(stack_type, whole, x, y)
        b, flat_b = fitted_state(stack_type, micro, x, y)
        for u, v in zip(flat_a, flat_b):
            torch.testing.assert_close(u, v, atol=1e-10, rtol=0)
        torch.testing.assert_close(a.train_loss, b.train_loss, atol=1e-10, rtol=0)


def test_full_batch_gradient_is_the_mean_over_the_training_set(digits):
    """batch_size >= n: one step per epoch whose gradient is the mean over every example, in chunks."""
    cell = validate_cell({"model": "mlp", "width": 2, "batch_size": 10_000, "micro_batch": 100, "epochs": 1,
                          "warmup": 0, "schedule": "constant", "momentum": 0, "weight_decay": 0})  # fmt: skip
    x, y = train.training_set(digits, cell)
    model = train.init_model(cell, x, 10)
    start = [p.detach().clone() for p in model.parameters()]
    loss = torch.nn.functional.cross_entropy(model(x), y)
    expected = torch.autograd.grad(loss, list(model.parameters()))
    stack = engine.LoopStack([model])
    recipe.fit(stack, [cell], x, y)
    for p, s, g in zip(model.parameters(), start, expected):
        torch.testing.assert_close((s - p.detach()) / cell["lr"], g, atol=1e-6, rtol=1e-4)


def penalized_gradient(params, digits):
    """The penalized gradient of one 64-example batch for a smooth (GELU) MLP, and the stack and batch."""
    cell = validate_cell({"model": "mlp", "width": 2, **params})
    x, y = train.training_set(digits, cell)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Flatten(), torch.nn.Linear(64, 32), torch.nn.GELU(), torch.nn.Linear(32, 10)
    )
    stack = engine.LoopStack([model])
    step = recipe.Step(stack, cell, stack, torch.zeros(1, dtype=torch.long))
    grads = step.accumulate([(x[None, :64], y[None, :64])], lr=torch.tensor([0.5]))
    return torch.cat([g.flatten() for g in grads]), model, x[:64], y[:64]


def test_penalty_finite_difference_matches_double_backprop(digits):
    """The authors' forward difference equals double backprop, and both equal the gradient of
    L + (lr·alpha/8)·‖∇L‖² computed directly; the difference's error is small beside the penalty term.

    On a smooth net only: with ReLU the finite difference also sees activation kinks that the a.e. Hessian
    of double backprop does not (measured: FD-autograd differ by 5x the penalty term for a ReLU MLP).
    """
    fd, model, xb, yb = penalized_gradient({"grad_penalty": 1.0, "penalty_method": "fd"}, digits)
    autograd, _, _, _ = penalized_gradient({"grad_penalty": 1.0, "penalty_method": "autograd"}, digits)
    plain, _, _, _ = penalized_gradient({}, digits)
    params = list(model.parameters())
    loss = lambda: torch.nn.functional.cross_entropy(model(xb), yb)
    grads = torch.autograd.grad(loss(), params, create_graph=True)
    penalized = loss() + 0.5 * 1.0 / 8 * sum(g.square().sum() for g in grads)
    direct = torch.cat([g.flatten() for g in torch.autograd.grad(penalized, params)])
    torch.testing.assert_close(autograd, direct, atol=1e-6, rtol=1e-4)
    assert (fd - autograd).norm() < 0.05 * (autograd - plain).norm()
    assert (autograd - plain).norm() > 1e-3


def test_gradient_noise_is_standard_normal_and_independent_across_runs_and_steps():
    modules = [torch.nn.Linear(100, 100) for _ in range(3)]
    stack = engine.VmapStack(modules)
    seeds = torch.tensor([5, 6, 7])
    draw = lambda step: torch.cat([z.reshape(3, -1) for z in engine.counter_normal(stack, seeds, step)], 1)
    z, later = draw(0), draw(1)
    assert z.mean().abs() < 0.01 and (z.std() - 1).abs() < 0.01
    assert (
        torch.corrcoef(torch.cat([z, later]))[torch.triu_indices(6, 6, 1).unbind()].abs().max() < 0.05
    )  # 5 SE
    alone = engine.counter_normal(engine.LoopStack(modules[1:2]), seeds[1:2], 0)
    assert torch.equal(torch.cat([a.flatten() for a in alone]), z[1])


def test_cyclic_and_fge_schedules_follow_their_formulas():
    total = 100
    cyclic = schedules.schedule(validate_cell({"schedule": "cyclic_cosine", "warmup": 0, "cycles": 4}), total)
    for step in (0, 10, 24, 25, 60):
        assert cyclic.factor(step) == pytest.approx(0.5 * (math.cos(math.pi * (step % 25) / 25) + 1))
    assert cyclic.snapshots == (25, 50, 75, 100)
    fge = schedules.schedule(validate_cell({"schedule": "fge", "warmup": 0, "cycles": 5, "lr": 0.1,
                                            "lr_min": 0.01}), total)  # fmt: skip
    lr = lambda step: 0.1 * fge.factor(step)
    for step in (0, 4, 9, 12, 19, 20):
        t = (step % 20 + 1) / 20
        expected = (1 - 2 * t) * 0.1 + 2 * t * 0.01 if t < 0.5 else (2 * t - 1) * 0.1 + (2 - 2 * t) * 0.01
        assert lr(step) == pytest.approx(expected)
    assert lr(9) == pytest.approx(0.01)  # the 10th step of each 20-step cycle is the low point
    assert fge.snapshots == (10, 30, 50, 70, 90)
    warm = schedules.schedule(validate_cell({"schedule": "cyclic_cosine", "warmup": 0.2, "cycles": 2}), total)
    assert warm.factor(0) == pytest.approx(1 / 20) and warm.factor(20) == 1 and warm.snapshots == (60, 100)


def test_garipov_schedule_holds_then_falls_linearly_to_one_percent():
    """dnn-mode-connectivity's train.py trains epoch e = 1..E at learning_rate_schedule(lr, e, E), the factor of
    e/E: at E = 200 epochs, epoch 100 still at the peak, epoch 101 at 1 - 0.99/80, epoch 160 (the last before
    the authors' checkpoint 160) at 0.2575, epoch 180 and after at 1%."""
    garipov = schedules.schedule(validate_cell({"schedule": "garipov", "warmup": 0, "epochs": 200}), 200)
    epoch = lambda e: garipov.factor(e - 1)  # one step per epoch; steps count from 0
    assert [epoch(1), epoch(100)] == [1, 1] and garipov.snapshots == ()
    assert epoch(101) == pytest.approx(1 - 0.99 / 80) and epoch(160) == pytest.approx(0.2575)
    assert epoch(179) > 0.01 and epoch(180) == pytest.approx(0.01) and epoch(200) == pytest.approx(0.01)
    per_step = schedules.schedule(validate_cell({"schedule": "garipov", "warmup": 0, "epochs": 200}), 200 * 7)
    assert [per_step.factor(s) for s in range(159 * 7, 160 * 7)] == [epoch(160)] * 7  # set once per epoch


def test_decay_length_reproduces_the_cosine_that_never_anneals():
    """Geiping et al.'s 3,000 steps with warm-up 400 and a cosine over 4,000 end at 27.4% of the peak lr;
    without decay_length the cosine spans the rest of the run and ends near 0."""
    cell = validate_cell({"schedule": "cosine", "warmup": 400 / 3000, "decay_length": 4000 / 3000})
    long = schedules.schedule(cell, 3000)
    assert long.factor(399) == 1 and long.factor(2999) == pytest.approx(
        0.5 * (1 + math.cos(math.pi * 2599 / 4000))
    )
    assert long.factor(2999) == pytest.approx(0.274, abs=0.001)
    plain = schedules.schedule(validate_cell({"schedule": "cosine", "warmup": 400 / 3000}), 3000)
    assert plain.factor(2999) < 1e-5


@pytest.mark.parametrize("every, expected", [("final", [48]), ("snapshots", [12, 24, 36, 48]),
                                             ("every:1.5", [6, 12, 18, 24, 30, 36, 42, 48]),
                                             ("evenly:3", [16, 32, 48])])  # fmt: skip
def test_checkpoint_steps(every, expected):
    cell = validate_cell({"schedule": "cyclic_cosine", "warmup": 0, "cycles": 4})
    assert checkpoints.steps(every, 48, 4, schedules.schedule(cell, 48).snapshots) == expected


@pytest.mark.parametrize("declared", ["final", "every:5", "every:4", "every:0.5", "evenly:3", "snapshots"])
def test_the_job_planning_and_the_memory_estimate_count_the_same_checkpoints(declared):
    """The job's checkpoint steps (`recipe.fit`), the epochs planning lets `init_from` start from and the kept
    weights the memory estimate counts, for one declaration over 12 epochs: every:5 kept 3, counted 2."""
    cell = validate_cell({"schedule": "cyclic_cosine", "warmup": 0, "cycles": 4, "epochs": 12})
    steps_per_epoch, total = 10, 120
    made = checkpoints.steps(declared, total, steps_per_epoch, schedules.schedule(cell, total).snapshots)
    assert len(made) == footprint.checkpoint_count(cell, declared, steps_per_epoch * cell["batch_size"])
    kept = checkpoints.epochs(declared, 12)
    assert kept is None or [round(e * steps_per_epoch) for e in kept] == made


def test_batch_orders():
    g = lambda: torch.Generator().manual_seed(0)
    shuffled = sampling.batch_indices(10, 5, g())
    first, second = torch.cat([next(shuffled), next(shuffled)]), torch.cat([next(shuffled), next(shuffled)])
    assert sorted(first.tolist()) == list(range(10)) and not torch.equal(first, second)
    fixed = sampling.batch_indices(10, 5, g(), "fixed")
    first, second = torch.cat([next(fixed), next(fixed)]), torch.cat([next(fixed), next(fixed)])
    assert sorted(first.tolist()) == list(range(10)) and torch.equal(first, second)
    drawn = torch.cat([next(sampling.batch_indices(10, 5, g(), "replacement")) for _ in range(1)])
    many = sampling.batch_indices(10, 10, g(), "replacement")
    assert len(drawn) == 5 and any(len(set(next(many).tolist())) < 10 for _ in range(5))


def test_drop_last_leaves_out_partial_batches_and_chunks(digits):
    dropped = sampling.batch_indices(10, 4, torch.Generator().manual_seed(0), drop_last=True)
    epoch = [next(dropped) for _ in range(4)]
    assert [len(b) for b in epoch] == [4, 4, 4, 4] and len(set(torch.cat(epoch[:2]).tolist())) == 8
    seen = []
    cell = validate_cell({"width": 2, "epochs": 2, "batch_size": 5000, "micro_batch": 500, "drop_last": True})
    x, y = train.training_set(digits, cell)  # 1,438 examples: two whole chunks of 500 per step
    stack = engine.LoopStack([train.init_model(cell, x, 10)])
    original = recipe.Step.accumulate
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(recipe.Step, "accumulate", lambda self, chunks, *a: seen.append([c[1].shape[1] for c in chunks])
                      or original(self, chunks, *a))  # fmt: skip
        result = recipe.fit(stack, [cell], x, y)
    assert seen == [[500, 500], [500, 500]] and result.history[-1]["step"] == 2


def test_weights_reload_to_identical_predictions_and_runs_continue_from_them(digits, digits_sets):
    """Kept weights reproduce the run's predictions exactly; a run started from them (init_from) continues."""
    cells = run_cells(2, width=4, epochs=1, schedule="cyclic_cosine", cycles=2, warmup=0)
    results = train.train_shard(cells, digits, digits_sets, checkpoints="snapshots", keep_weights=True)
    for r in results:
        assert sorted(r.weights) == [*sorted(r.checkpoints), r.steps] and len(r.checkpoints) == 1
        assert r.history[-1]["step"] == r.steps and len(r.history) == 1
    x, _ = train.training_set(digits, cells[0])
    stack = train.build_stack(cells, x, 10, engine.Execution("loop"), [r.weights[r.steps] for r in results])
    again = evaluation.evaluate(stack, digits_sets)
    for r, evals in zip(results, again):
        for key, e in r.evals.items():
            assert (evals[key].pred == e.pred).all() and (evals[key].p_true == e.p_true).all()
    snapshot = train.build_stack(
        cells[:1], x, 10, engine.Execution("loop"), [results[0].weights[min(results[0].weights)]]
    )
    (mid,) = evaluation.evaluate(snapshot, digits_sets)
    assert (
        mid["clean", 0].p_true == results[0].checkpoints[min(results[0].checkpoints)]["clean", 0].p_true
    ).all()
    more = run_cells(2, width=4, epochs=0.1, lr=0.001, init_from="base")
    continued = train.train_shard(more, digits, digits_sets, start=[r.weights[r.steps] for r in results])
    fresh = train.train_shard(run_cells(2, width=4, epochs=0.1, lr=0.001), digits, digits_sets)
    for c, f, r in zip(continued, fresh, results):
        assert abs(c.evals["clean", 0].acc - r.evals["clean", 0].acc) < 0.05
        assert c.evals["clean", 0].acc > f.evals["clean", 0].acc + 0.2


def test_progress_lines_report_epoch_loss_and_eta(digits):
    """A shard log is never silent for long: with the interval at 0 every step prints a line."""
    cells = run_cells(2, width=4, epochs=0.2)
    x, y = train.training_set(digits, cells[0])
    lines = []
    result = recipe.fit(engine.LoopStack([train.init_model(c, x, 10) for c in cells]), cells, x, y, log=lines.append,
                        progress_every=0.0)  # fmt: skip
    assert len(lines) == result.history[-1]["step"] == 5
    assert (
        lines[-1].startswith("  epoch 0.2/0.2: mean train loss")
        and "over 2 runs" in lines[-1]
        and "ETA 0 s" in lines[-1]
    )


@pytest.mark.parametrize(
    "settings",
    [
        {"optimizer": "sgd", "momentum": 0.0, "weight_decay": 0.0},
        {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 5e-4},
        {"optimizer": "sgd", "momentum": 0.9, "weight_decay": 5e-4, "nesterov": True},
        {"optimizer": "adam", "weight_decay": 1e-2},
        {"optimizer": "adamw", "weight_decay": 5e-2},
    ],
    ids=["sgd", "momentum", "nesterov", "adam", "adamw"],
)
def test_the_optimizers_take_torch_optims_steps(settings):
    """chaosgrid's per-run optimizers follow torch.optim's definitions: six steps of changing lr and gradients
    from the same weights give the same weights (float64; only the rounding of fused operations differs)."""
    torch.manual_seed(0)
    ours, theirs = torch.nn.Linear(5, 3).double(), torch.nn.Linear(5, 3).double()
    theirs.load_state_dict(ours.state_dict())
    cell = validate_cell({**settings, "lr": 0.1})
    optimizer = optimizers.Optimizer(engine.LoopStack([ours]), [cell])
    kind = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}[cell["optimizer"]]
    numbers = {"weight_decay": cell["weight_decay"]}
    if kind is torch.optim.SGD:
        numbers.update(momentum=cell["momentum"], nesterov=cell["nesterov"] and cell["momentum"] > 0)
    reference = kind(theirs.parameters(), lr=0.1, **numbers)
    for step in range(6):
        lr = 0.1 * (1 - step / 6)
        for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
            a.grad = torch.randn_like(a)
            b.grad = a.grad.clone()
        reference.param_groups[0]["lr"] = lr
        reference.step()
        optimizer.step(torch.tensor([lr], dtype=torch.float64))
    for a, b in zip(ours.parameters(), theirs.parameters(), strict=True):
        torch.testing.assert_close(a, b, atol=1e-14, rtol=0)
    assert not torch.equal(ours.weight, torch.nn.Linear(5, 3).double().weight)


POINTS = {  # grid points that differ only in the optimizer's per-run numbers, each pair of seeds one point
    "sgd": [{"lr": 0.05}, {"lr": 0.2, "momentum": 0.0}, {"lr": 0.1, "weight_decay": 0.01}],
    "nesterov": [{"lr": 0.05, "nesterov": True}, {"lr": 0.1, "momentum": 0.5, "nesterov": True}],
    "adamw": [{"optimizer": "adamw", "lr": 1e-3}, {"optimizer": "adamw", "lr": 3e-3, "weight_decay": 0.1}],
    "cosine_to_lr_min": [{"schedule": "cosine", "lr_min": 0.01, "lr": lr} for lr in (0.02, 0.2)],
    "penalty": [{"grad_penalty": 0.5, "micro_batch": 16, "lr": lr} for lr in (0.1, 0.3)],
}


@pytest.mark.parametrize("stack_type", [engine.LoopStack, engine.VmapStack], ids=["loop", "vmap"])
@pytest.mark.parametrize("points", list(POINTS))
def test_grid_points_stacked_together_equal_each_point_alone(digits64, stack_type, points):
    """Grid points that differ only in lr, momentum or weight decay train as one stack (a shard of several
    points), and each point's runs come out bit-identical to its point trained alone, on both engines: the
    optimizer's per-run numbers enter through separate elementwise operations (`chaosgrid.optimizers`), and a
    stack of several runs under vmap runs the same grouped kernels at K=6 as at K=2 (measured in float64 under
    AVX2 and AVX512_CORE, 1 and 2 threads: 0 difference for every case here)."""
    grid = [run_cells(2, width=4, epochs=0.25, augmentation="flip_crop", **point) for point in POINTS[points]]
    x, y = train.training_set(digits64, grid[0][0])
    together, flat = fitted_state(stack_type, [c for point in grid for c in point], x, y)
    for p, cells in enumerate(grid):
        alone, alone_flat = fitted_state(stack_type, cells, x, y)
        for r, weights in enumerate(alone_flat):
            assert torch.equal(flat[2 * p + r], weights), (points, p, r)
            assert torch.equal(together.train_loss[2 * p + r], alone.train_loss[r])
            assert torch.equal(
                together.history[-1]["current_lr"][2 * p + r], alone.history[-1]["current_lr"][r]
            )
    assert (flat[0] - flat[2]).abs().max() > 1e-3  # the points differ: the equality is not vacuous
