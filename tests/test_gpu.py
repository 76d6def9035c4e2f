"""What only a GPU can check: the engines on CUDA, bf16 autocast, channels-last, and claiming GPUs. Marked
`gpu` and skipped where no CUDA device is (this project's CPU machines and CI); `benchmarks/gpu_check.sh`
runs them first on any GPU machine."""

import numpy as np
import pytest
import torch

from chaosgrid import data, device, engine, evalsets, shifts, train
from chaosgrid.cells import cell_id, validate_cell

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device here"),
]


def cells(n: int, **params) -> list[dict]:
    return [validate_cell({**params, "init_seed": i, "order_seed": i, "aug_seed": i}) for i in range(n)]


@pytest.fixture(scope="module")
def digits_cuda64():
    """digits on the GPU in float64 (engines compared without float32 rounding, which depends on kernels)."""
    ds = data.digits().to("cuda", torch.float64)
    return ds, shifts.eval_sets(ds, evalsets.eval_pairs(["gaussian_noise"], [2]))


@pytest.mark.parametrize("model", ["cnn", "resnet18", "fast"])
def test_vmap_on_cuda_equals_the_loop(digits_cuda64, model):
    ds, sets = digits_cuda64
    spec = cells(4, model=model, width=4, epochs=0.3, augmentation="flip_crop")
    loop = train.train_shard(spec, ds, sets, engine.Execution("loop"))
    vmapped = train.train_shard(spec, ds, sets, engine.Execution("vmap"))
    for a, b in zip(loop, vmapped, strict=True):
        assert abs(a.train_loss - b.train_loss) < 1e-8
        assert np.array_equal(a.evals["clean", 0].pred, b.evals["clean", 0].pred)


def test_channels_last_on_cuda_changes_only_rounding(digits_cuda64):
    ds, sets = digits_cuda64
    spec = cells(2, model="fast", width=4, epochs=0.3)
    plain = train.train_shard(spec, ds, sets, engine.Execution("vmap"))
    nhwc = train.train_shard(spec, ds, sets, engine.Execution("vmap", channels_last=True))
    for a, b in zip(plain, nhwc, strict=True):
        assert abs(a.train_loss - b.train_loss) < 1e-8


def test_bf16_autocast_trains_on_cuda():
    """bf16 is a recipe choice: on a GPU it trains to an accuracy near fp32's."""
    ds = data.digits().to("cuda")
    sets = shifts.eval_sets(ds, evalsets.eval_pairs([], []))
    fp32, bf16 = (train.train_shard(cells(2, precision=p, epochs=3), ds, sets, engine.Execution("vmap"))
                  for p in ("fp32", "bf16"))  # fmt: skip
    for a, b in zip(fp32, bf16, strict=True):
        assert b.diverged_step == -1 and abs(a.evals["clean", 0].acc - b.evals["clean", 0].acc) < 0.05


def test_each_job_claims_a_gpu_no_other_holds(tmp_path):
    """claim_gpu hands out distinct GPUs while there are free ones, then shares one."""
    count = torch.cuda.device_count()
    claimed = [device.claim_gpu(count, tmp_path) for _ in range(count)]
    assert sorted(claimed) == list(range(count))
    assert 0 <= device.claim_gpu(count, tmp_path) < count


def test_a_killed_shard_resumes_on_cuda_to_the_same_tables(tmp_path):
    """Resume on CUDA (tests/test_resume.py's check, on the GPU): a shard SIGKILLed after a save and run
    again ends with the tables of an uninterrupted run. (Unequal tables here would mean CUDA kernels that are
    not deterministic run to run, not a resume fault: tests/test_resume.py passes on the CPU.)"""
    from test_resume import stop_after_a_save, tables
    from test_resume import train as shard_job

    whole = shard_job(tmp_path / "whole", "vmap", "--device", "cuda")
    assert whole.wait() == 0, whole.stdout.read()
    state = tmp_path / "cut/resume/seeds~0-2.pt"
    stop_after_a_save(
        shard_job(tmp_path / "cut", "vmap", "--device", "cuda", "--save-every", "0.001"), state, 9
    )
    finished = shard_job(tmp_path / "cut", "vmap", "--device", "cuda", "--save-every", "0.001")
    said = finished.communicate()[0]
    assert finished.returncode == 0 and "resuming from" in said, said
    whole_tables, cut_tables = tables(tmp_path / "whole"), tables(tmp_path / "cut")
    for kind in whole_tables:
        assert cut_tables[kind].equals(whole_tables[kind]), kind


def test_kept_weights_evaluate_on_cuda_as_training_did(digits_cuda64):
    """The evaluation job of a study that keeps weights (a new shift) gives its training's predictions."""
    ds, sets = digits_cuda64
    spec, execution = cells(2, epochs=0.3), engine.Execution("vmap")
    results = train.train_shard(spec, ds, sets, execution, checkpoints="every:0.1", keep_weights=True)
    shifted = {key: s for key, s in sets.items() if key != evalsets.CLEAN}
    runs = [{"weights": r.weights, "steps": r.steps} for r in results]
    by_id = {cell_id(r.cell): r for r in results}
    for cid, step, _, evals in train.evaluate_weights(spec, runs, [False, False], ds, shifted, execution):
        trained = by_id[cid].evals if step == by_id[cid].steps else by_id[cid].checkpoints[step]
        for key, e in evals.items():
            np.testing.assert_array_equal(e.pred, trained[key].pred)
