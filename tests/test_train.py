import math

import numpy as np
import pytest
import torch

from chaosgrid import (
    data,
    engine,
    evalsets,
    evaluation,
    footprint,
    recipe,
    sampling,
    schedules,
    shifts,
    train,
)
from chaosgrid.cells import cell_id, validate_cell


def cells(n=2, **params):
    return [validate_cell({**params, "init_seed": i, "order_seed": i, "aug_seed": i}) for i in range(n)]


def predictions(results):
    return np.stack([r.evals["clean", 0].pred for r in results])


def test_default_cnn_on_digits_reaches_97_percent(digits, digits_sets):
    (result,) = train.train_shard(cells(1), digits, digits_sets)
    print(
        f"default cnn on digits: test_acc {result.evals['clean', 0].acc:.4f} in {result.wall_s:.2f} s (1 thread)"
    )
    assert result.evals["clean", 0].acc >= 0.97
    assert result.diverged_step == -1 and result.train_acc > 0.97


@pytest.mark.parametrize("engine_name", ["loop", "vmap"])
def test_same_seeds_give_bit_identical_runs_on_cpu(digits, digits_sets, engine_name):
    spec = cells(2, epochs=2, augmentation="flip_crop")
    first, second = (
        train.train_shard(spec, digits, digits_sets, engine.Execution(engine_name)) for _ in range(2)
    )
    for a, b in zip(first, second):
        assert a.train_loss == b.train_loss
        for key in a.evals:
            assert np.array_equal(a.evals[key].p_true, b.evals[key].p_true)


@pytest.mark.parametrize("source", ["init", "order", "aug"])
def test_each_seed_source_changes_the_run(digits, digits_sets, source):
    base = validate_cell({"epochs": 1, "augmentation": "flip_crop"})
    other = {**base, f"{source}_seed": 1}
    a, b = train.train_shard([base], digits, digits_sets) + train.train_shard([other], digits, digits_sets)
    assert a.train_loss != b.train_loss


@pytest.mark.parametrize("model", ["cnn", "resnet18", "fast"])
def test_vmap_and_loop_engines_agree(digits64, digits64_sets, model):
    """Same seeds, both engines: equal predictions and probabilities after a few steps (BatchNorm included).

    In float64: the engines call different kernels, whose float32 rounding differs by CPU (five steps of a
    width-4 ResNet amplified it to 2.3e-3 in loss on an AMD EPYC, 1e-7 on another machine); in float64 the
    losses agree to 1e-13 (measured). p_true is stored as float16 (a step of up to 4.9e-4 below 1).
    """
    spec = cells(3, model=model, width=4, epochs=0.2, augmentation="flip_crop")
    loop = train.train_shard(spec, digits64, digits64_sets, engine.Execution("loop"))
    vmapped = train.train_shard(spec, digits64, digits64_sets, engine.Execution("vmap"))
    assert_same_runs(loop, vmapped)


def test_a_shard_trained_in_stacks_is_the_shard_trained_at_once(digits64, digits64_sets):
    """Planning's `stack` (runs that do not fit the device together train a few at a time) changes how a
    shard runs, not what its runs compute: 5 runs in stacks of 2 are the 5 runs at once (float64)."""
    spec = cells(5, width=4, epochs=0.2, augmentation="flip_crop")
    assert [len(g) for g in engine.stack_groups(spec, engine.Execution("vmap", stack=2))] == [2, 2, 1]
    together = train.train_shard(spec, digits64, digits64_sets, engine.Execution("vmap"))
    stacked = train.train_shard(spec, digits64, digits64_sets, engine.Execution("vmap", stack=2))
    assert_same_runs(together, stacked)
    assert [r.cell for r in stacked] == spec


def assert_same_runs(first, second):
    """Two ways of computing the same float64 runs agree: losses to 1e-9, predictions exactly, stored
    (float16) true-class probabilities to one float16 step."""
    for a, b in zip(first, second, strict=True):
        assert abs(a.train_loss - b.train_loss) < 1e-9
        for key in a.evals:
            np.testing.assert_allclose(a.evals[key].p_true, b.evals[key].p_true, atol=1e-3)
            assert np.array_equal(a.evals[key].pred, b.evals[key].pred)


def test_a_cpu_evaluates_stacked_models_one_by_one_with_the_bits_of_vmap(digits):
    """Evaluation (one input for all K models) runs K plain calls on a CPU: faster, and vmap's output up to
    rounding (3e-8 at width 4)."""
    spec = cells(3, width=4)
    x, _ = train.training_set(digits, spec[0])
    stack = engine.make_stack([train.init_model(c, x, 10) for c in spec], engine.Execution("vmap"))
    stack.train(False)
    with torch.no_grad():
        batched = torch.func.vmap(stack._one, in_dims=(0, 0, None))(stack.stacked, stack.buffers, x[:300])
        one_by_one = stack(x[:300], shared=True)
    torch.testing.assert_close(one_by_one, batched, rtol=0, atol=1e-6)
    assert torch.equal(one_by_one.argmax(-1), batched.argmax(-1))
    assert evaluation.eval_chunk(x) == 2048 and evaluation.eval_chunk(torch.zeros(1, 3, 32, 32)) == 128


@pytest.fixture(scope="module")
def trained(digits):
    """A cnn trained for one epoch on digits, as a one-model stack, and the normalised test images."""
    cell = cells(1, epochs=1)[0]
    x, y = train.training_set(digits, cell)
    stack = engine.LoopStack([train.init_model(cell, x, 10)])
    recipe.fit(stack, [cell], x, y)
    return stack, digits.normalize(digits.x_test)


def test_eval_uses_batchnorm_running_statistics(digits, trained):
    """Eval-mode predictions must not depend on which other examples share the batch."""
    stack, x_test = trained
    whole = evaluation.evaluate(stack, {("clean", 0): (x_test, digits.y_test)})[0]["clean", 0]
    first = evaluation.evaluate(stack, {("clean", 0): (x_test[:7], digits.y_test[:7])})[0]["clean", 0]
    np.testing.assert_allclose(whole.p_true[:7].astype(float), first.p_true.astype(float), atol=1e-3)


def test_a_diverged_run_is_marked_and_others_continue(digits):
    spec = cells(2, epochs=1)
    x, y = train.training_set(digits, spec[0])
    modules = [train.init_model(c, x, 10) for c in spec]
    with torch.no_grad():
        next(modules[1].parameters()).view(-1)[0] = float("nan")
    together = recipe.fit(engine.VmapStack(modules), spec, x, y)
    assert together.diverged_step.tolist() == [-1, 0]
    alone = recipe.fit(engine.VmapStack([train.init_model(spec[0], x, 10)]), spec[:1], x, y)
    assert alone.diverged_step.tolist() == [-1]
    assert abs(together.train_loss[0].item() - alone.train_loss[0].item()) < 1e-4


def test_huge_learning_rate_is_recorded_as_diverged(digits, digits_sets):
    """(BatchNorm makes a net scale-invariant: lr 1e6 only stalls it; 1e20 overflows the head to inf.)"""
    results = train.train_shard(cells(2, lr=1e20, epochs=1, weight_decay=0), digits, digits_sets)
    for r in results:
        assert r.diverged_step >= 0
        assert math.isnan(r.evals["clean", 0].acc)


@pytest.mark.parametrize("perturbation", ["weight", "fp16_first_batch"])
def test_tiny_perturbations_change_the_run_slightly(digits, digits_sets, perturbation):
    (base,) = train.train_shard(cells(1, epochs=0.1), digits, digits_sets)
    (twin,) = train.train_shard(cells(1, epochs=0.1, perturbation=perturbation), digits, digits_sets)
    assert base.train_loss != twin.train_loss
    assert abs(base.train_loss - twin.train_loss) < 0.05


def test_auto_engine_follows_the_measurements():
    assert footprint.choose_engine("auto", False, pixels=8 * 8, k=8) == "vmap"
    assert footprint.choose_engine("auto", False, pixels=8 * 8, k=2) == "loop"
    assert footprint.choose_engine("auto", False, pixels=32 * 32, k=64) == "loop"
    assert footprint.choose_engine("auto", True, pixels=32 * 32, k=1) == "vmap"
    assert footprint.choose_engine("loop", True) == "loop"
    with pytest.raises(ValueError, match="'jit'"):
        footprint.choose_engine("jit", False)


def factor(schedule, warmup=0.0, total=100, **params):
    return schedules.schedule(validate_cell({"schedule": schedule, "warmup": warmup, **params}), total).factor


def test_lr_schedules():
    linear = factor("linear", 0.1)
    assert linear(0) == pytest.approx(0.1) and linear(9) == 1 and linear(99) < 0.02
    cosine = factor("cosine")
    assert cosine(0) == 1 and cosine(50) == pytest.approx(0.5) and cosine(99) < 0.01
    step = factor("step")
    assert [step(10), step(60), step(80)] == pytest.approx([1, 0.1, 0.01])
    assert factor("constant")(99) == 1


def test_label_noise_and_fraction_shape_the_training_set(digits):
    _, y = train.training_set(digits, validate_cell({"data_fraction": 0.5, "label_noise": 0.2}))
    keep = sampling.balanced_subset(digits.y_train, 0.5)
    assert len(y) == len(keep)
    assert (y != digits.y_train[keep]).sum() == round(0.2 * len(keep))


def test_synthetic_task_is_learnable():
    ds = data.synthetic(2000, 500)
    sets = shifts.eval_sets(ds, evalsets.eval_pairs([], []))
    (result,) = train.train_shard(
        cells(1, dataset="synthetic", width=8, epochs=4, batch_size=128, lr=0.1), ds, sets
    )
    assert result.evals["clean", 0].acc > 0.25  # chance is 0.10


def test_shard_cells_must_differ_only_in_seeds_and_optimizer_numbers(digits, digits_sets):
    mixed = [validate_cell({"width": 4}), validate_cell({"width": 8})]
    with pytest.raises(ValueError, match="only in their seeds and lr, momentum, weight_decay"):
        train.train_shard(mixed, digits, digits_sets)


def test_bf16_precision_trains_to_nearly_the_same_accuracy(digits, digits_sets):
    """bf16 autocast is a recipe choice (part of the cell): a different run, not a different result quality."""
    (fp32,) = train.train_shard(cells(1, epochs=3), digits, digits_sets)
    (bf16,) = train.train_shard(cells(1, epochs=3, precision="bf16"), digits, digits_sets)
    assert fp32.train_loss != bf16.train_loss
    assert abs(fp32.evals["clean", 0].acc - bf16.evals["clean", 0].acc) < 0.03


def test_flip_tta_averages_the_logits_of_image_and_mirror(digits, trained):
    stack, x_test = trained
    (plain,) = evaluation.evaluate(stack, {("clean", 0): (x_test, digits.y_test)})
    (tta,) = evaluation.evaluate(stack, {("clean", 0): (x_test, digits.y_test)}, tta="flip")
    stack.train(False)
    with torch.no_grad():
        expected = ((stack(x_test, shared=True) + stack(x_test.flip(-1), shared=True)) / 2).softmax(-1)[0]
    expected_p = expected[torch.arange(len(digits.y_test)), digits.y_test].numpy()
    np.testing.assert_allclose(tta["clean", 0].p_true.astype(float), expected_p, atol=1e-3)
    assert not np.array_equal(tta["clean", 0].p_true, plain["clean", 0].p_true)
    mirrored = (x_test + x_test.flip(-1)) / 2  # images equal to their mirror: flipping changes nothing
    (sym,) = evaluation.evaluate(stack, {("clean", 0): (mirrored, digits.y_test)})
    (sym_tta,) = evaluation.evaluate(stack, {("clean", 0): (mirrored, digits.y_test)}, tta="flip")
    np.testing.assert_allclose(sym["clean", 0].p_true.astype(float), sym_tta["clean", 0].p_true.astype(float),
                               atol=1e-3)  # fmt: skip


@pytest.mark.parametrize("engine_name", ["loop", "vmap"])
def test_channels_last_changes_only_rounding(digits64, digits64_sets, engine_name):
    """NHWC kernels differ from NCHW ones in rounding only (float64, as the engines' test)."""
    spec = cells(2, model="fast", width=4, epochs=0.5, augmentation="flip_crop")
    plain = train.train_shard(spec, digits64, digits64_sets, engine.Execution(engine_name))
    nhwc = train.train_shard(spec, digits64, digits64_sets, engine.Execution(engine_name, channels_last=True))
    assert_same_runs(plain, nhwc)


@pytest.mark.parametrize("engine_name", ["loop", "vmap"])
def test_compiled_training_matches_eager(digits64, digits64_sets, engine_name):
    """One compilation per batch shape serves the whole shard; BatchNorm buffers update as in eager mode."""
    spec = cells(2, width=4, epochs=0.5)
    eager = train.train_shard(spec, digits64, digits64_sets, engine.Execution(engine_name))
    compiled = train.train_shard(spec, digits64, digits64_sets, engine.Execution(engine_name, compile=True))
    assert_same_runs(eager, compiled)


@pytest.mark.parametrize("engine_name", ["loop", "vmap"])
def test_kept_weights_evaluate_as_training_did(digits, digits_sets, engine_name):
    """A shard that keeps its weights is evaluated on its shifted sets after training (a new shift costs no
    retraining): the same predictions, bit for bit, at every kept checkpoint; a diverged run's accuracy NaN."""
    spec = cells(2, epochs=0.3)
    execution = engine.Execution(engine_name)
    results = train.train_shard(
        spec, digits, digits_sets, execution, checkpoints="every:0.1", keep_weights=True
    )
    shifted = {key: sets for key, sets in digits_sets.items() if key != evalsets.CLEAN}
    runs = [{"weights": r.weights, "steps": r.steps} for r in results]
    found = list(train.evaluate_weights(spec, runs, [False, True], digits, shifted, execution))
    assert len(found) == 2 * len(results[0].weights) and len(results[0].weights) >= 3
    for cid, step, final, evals in found:
        (r, lost), *_ = [(r, i == 1) for i, r in enumerate(results) if cell_id(r.cell) == cid]
        trained = r.evals if step == r.steps else r.checkpoints[step]
        assert final == (step == r.steps) and set(evals) == set(shifted)
        for key, e in evals.items():
            np.testing.assert_array_equal(e.pred, trained[key].pred)
            np.testing.assert_array_equal(e.p_true, trained[key].p_true)
            assert math.isnan(e.acc) if lost else e.acc == trained[key].acc
