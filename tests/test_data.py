import numpy as np
import pytest
import torch
from published_data import (
    write_cifar10,
    write_cifar10_1,
    write_cifar10_c,
    write_cifar100,
    write_idx,
    write_svhn,
)

from chaosgrid import data, sampling


def test_digits_split_is_fixed(digits):
    assert digits.x_train.shape[1:] == (1, 8, 8) and len(digits.x_train) + len(digits.x_test) == 1797
    assert torch.equal(data.digits().y_test, digits.y_test)
    assert 0 <= digits.x_train.min() and digits.x_train.max() <= 1


def test_synthetic_is_cifar_shaped_deterministic_and_balanced():
    x, y = data.synthetic_images(2000, seed=0)
    x2, y2 = data.synthetic_images(2000, seed=0)
    assert x.shape == (2000, 3, 32, 32) and torch.equal(x, x2) and torch.equal(y, y2)
    assert not torch.equal(x, data.synthetic_images(2000, seed=1)[0])
    counts = torch.bincount(y, minlength=10)
    assert counts.min() > 150  # all ten classes present in similar numbers


def test_balanced_subset_is_deterministic_and_balanced(digits):
    idx = sampling.balanced_subset(digits.y_train, 0.5)
    assert torch.equal(idx, sampling.balanced_subset(digits.y_train, 0.5))
    full = torch.bincount(digits.y_train, minlength=10)
    half = torch.bincount(digits.y_train[idx], minlength=10)
    assert torch.all((half - full / 2).abs() <= 1)
    assert len(sampling.balanced_subset(digits.y_train, 1.0)) == len(digits.y_train)


def test_label_noise_replaces_exact_fraction_with_other_classes(digits):
    y = digits.y_train
    noisy = sampling.noisy_labels(y, 0.2, 10)
    assert (noisy != y).sum() == round(0.2 * len(y))
    assert torch.equal(noisy, sampling.noisy_labels(y, 0.2, 10))
    assert noisy.max() < 10
    balanced = sampling.noisy_labels(
        y, 0.2, 10, per_class=True
    )  # the paper's: the same fraction of every class
    changed = torch.bincount(y[balanced != y], minlength=10)
    assert torch.equal(changed, torch.round(0.2 * torch.bincount(y, minlength=10)).long())


def test_batches_cover_each_epoch_once():
    stream = sampling.batch_indices(10, 4, sampling.generator("order", 0))
    epoch = [next(stream) for _ in range(3)]
    assert [len(b) for b in epoch] == [4, 4, 2]
    assert sorted(torch.cat(epoch).tolist()) == list(range(10))


@pytest.mark.parametrize("kind", ["flip", "crop", "flip_crop"])
def test_augment_is_seeded_and_shape_preserving(kind):
    x = torch.rand(16, 3, 32, 32)
    a = sampling.augment(x, kind, sampling.generator("aug", 1))
    assert a.shape == x.shape
    assert torch.equal(a, sampling.augment(x, kind, sampling.generator("aug", 1)))
    assert not torch.equal(a, x)
    assert torch.equal(sampling.augment(x, "none", sampling.generator("aug", 1)), x)


def test_crop_translates_by_at_most_the_pad():
    x = torch.zeros(64, 1, 32, 32)
    x[:, :, 16, 16] = 1
    moved = sampling.augment(x, "crop", sampling.generator("aug", 0))
    where = moved[:, 0].flatten(1).argmax(1)
    rows, cols = where // 32, where % 32
    assert (rows - 16).abs().max() <= 4 and (cols - 16).abs().max() <= 4
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 10


def test_mnist1d_is_generated_offline_deterministic_and_leaves_global_rngs_alone():
    state = np.random.get_state()[1].copy()
    a = data.mnist1d(n_train=200, n_test=300)
    assert np.array_equal(state, np.random.get_state()[1])
    assert a.x_train.shape == (200, 1, 1, 40) and a.x_test.shape == (300, 1, 1, 40)
    assert torch.equal(a.x_test, data.mnist1d(n_train=200, n_test=300).x_test)
    assert torch.bincount(a.y_train, minlength=10).min() > 5


def test_signals_are_cropped_along_their_length_only():
    x = torch.zeros(64, 1, 1, 40)
    x[:, :, 0, 20] = 1
    moved = sampling.augment(x, "crop", sampling.generator("aug", 0))
    where = moved[:, 0, 0].argmax(1)
    assert moved.sum(dim=(1, 2, 3)).eq(1).all()  # never shifted off its single row
    assert (where - 20).abs().max() <= sampling.crop_padding(40) == 5 and len(set(where.tolist())) > 5


def test_augmented_copies_are_fixed_distinct_and_keep_labels():
    x, y = torch.rand(10, 1, 8, 8), torch.arange(10)
    copies, labels = sampling.augmented_copies(x, y, 3, "flip_crop")
    assert copies.shape == (30, 1, 8, 8) and torch.equal(labels, y.repeat(3))
    assert torch.equal(copies, sampling.augmented_copies(x, y, 3, "flip_crop")[0])
    assert not torch.equal(copies[:10], copies[10:20])


def test_cifar10_reads_torchvision_format(tmp_path):
    test_images, test_labels = write_cifar10(tmp_path)
    ds = data.load("cifar10", tmp_path)
    assert ds.x_train.shape == (100, 3, 32, 32) and ds.x_test.shape == (20, 3, 32, 32)
    assert torch.allclose(ds.x_test[3], torch.from_numpy(test_images[3]).permute(2, 0, 1).float() / 255)
    assert ds.y_test.tolist() == test_labels


def test_cifar100_svhn_mnist_and_fashion_mnist_read_their_published_formats(tmp_path):
    """Through torchvision's dataset classes, from tiny files in the real formats: pixels, labels (SVHN's 10
    is the digit 0) and the class count each dataset carries."""
    images, fine = write_cifar100(tmp_path)
    ds = data.load("cifar100", tmp_path)
    assert ds.x_test.shape == (30, 3, 32, 32) and ds.y_test.tolist() == fine and ds.num_classes == 100
    assert torch.allclose(ds.x_test[2], torch.from_numpy(images[2]).permute(2, 0, 1).float() / 255)
    images, digits = write_svhn(tmp_path / "svhn")
    ds = data.load("svhn", tmp_path)
    assert ds.y_test.tolist() == digits.tolist() and ds.num_classes == 10
    assert torch.allclose(ds.x_test[5], torch.from_numpy(images[5]).permute(2, 0, 1).float() / 255)
    for name, folder in (("mnist", "mnist"), ("fashion_mnist", "fashion-mnist")):
        images, labels = write_idx(tmp_path / folder)
        ds = data.load(name, tmp_path)
        assert ds.x_train.shape == (9, 1, 28, 28) and ds.y_test.tolist() == labels.tolist()
        assert torch.equal(ds.x_test[4, 0], torch.from_numpy(images[4]).float() / 255)
    with pytest.raises(FileNotFoundError, match="svhn not found: looked for .*train_32x32.mat"):
        data.load("svhn", tmp_path / "elsewhere")


def test_missing_cifar10_says_where_it_looked(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "cifar-10-batches-py")):
        data.load("cifar10", tmp_path)


def test_cifar10_1_and_cifar10_c_readers(tmp_path):
    write_cifar10_1(tmp_path / "cifar10.1")
    x, y = data.cifar10_1(tmp_path)
    assert x.shape == (7, 3, 32, 32) and y.tolist() == list(range(7))
    write_cifar10_c(tmp_path)
    x, y = data.cifar10_c(tmp_path, "fog", 3)
    assert x.shape == (4, 3, 32, 32) and torch.allclose(x * 255, torch.full_like(x, 2.0))
    assert y.tolist() == [8, 9, 0, 1]
    with pytest.raises(FileNotFoundError, match="snow.npy"):
        data.cifar10_c(tmp_path, "snow", 1)


def test_augmented_batches_are_contiguous_images():
    """A crop's gather leaves a channels-last view; torch 2.14's CPU convolutions corrupted memory on such a
    view with 2-4 channels ("corrupted size vs. prev_size", ResNet-18 width 2 on 32x32 crops), so the batch
    is made contiguous."""
    x = torch.rand(8, 3, 32, 32)
    out = sampling.augment(x, "flip_crop", sampling.generator("aug", 0))
    assert out.is_contiguous() and out.shape == x.shape


def test_planning_knows_every_datasets_shape_and_size():
    """`footprint.DATASETS` (what planning's memory estimate reads, torch-free) agrees with the loaders of the
    offline sets and lists every dataset a study can name."""
    from chaosgrid.cells import CHOICES
    from chaosgrid.footprint import DATASETS

    assert set(DATASETS) == set(CHOICES["dataset"])
    for name in ("digits", "synthetic", "mnist1d"):
        loaded = data.load(name)
        shape, classes, n_train, n_test = DATASETS[name]
        assert (tuple(loaded.x_train.shape[1:]), loaded.num_classes, len(loaded.y_train), len(loaded.y_test)) == (
            shape, classes, n_train, n_test), name  # fmt: skip
