"""Seeds, and what a run draws from its dataset with them, each from its own stream: a class-balanced subset, noisy labels, the
order of its batches, and its augmentations (drawn apart from applied, so that K runs draw alike alone or
stacked)."""

from __future__ import annotations

import hashlib
import itertools
import math

import torch


def derive_seed(purpose: str, seed: int) -> int:
    """A 63-bit seed for one purpose ('order', 'aug', ...), so equal integers never share a random stream."""
    return int.from_bytes(hashlib.sha256(f"{purpose}:{seed}".encode()).digest()[:8], "little") >> 1


def generator(purpose: str, seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(derive_seed(purpose, seed))


def balanced_subset(y: torch.Tensor, fraction: float, seed: int = 0) -> torch.Tensor:
    """Indices of a deterministic class-balanced subset: the first ceil(fraction*n_c) of a fixed shuffle per class."""
    if fraction >= 1:
        return torch.arange(len(y))
    g = generator("subset", seed)
    keep = []
    for c in torch.unique(y):
        members = torch.nonzero(y == c).flatten()
        members = members[torch.randperm(len(members), generator=g)]
        keep.append(members[: math.ceil(fraction * len(members))])
    return torch.sort(torch.cat(keep)).values


def noisy_labels(
    y: torch.Tensor, fraction: float, num_classes: int, seed: int = 0, per_class: bool = False
) -> torch.Tensor:
    """Copy of `y` with round(fraction*n) labels, chosen by `seed`, replaced by a uniformly random other class
    of `num_classes`; with `per_class` that fraction of every class (Somepalli et al.: 1,000 of each CIFAR-10
    class)."""
    if fraction <= 0:
        return y
    g = generator("label_noise", seed)
    if per_class:
        members = [torch.nonzero(y.cpu() == c).squeeze(1) for c in range(num_classes)]
        flip = torch.cat(
            [m[torch.randperm(len(m), generator=g)[: round(fraction * len(m))]] for m in members]
        )
    else:
        flip = torch.randperm(len(y), generator=g)[: round(fraction * len(y))]
    shift = torch.randint(1, num_classes, (len(flip),), generator=g)
    noisy = y.clone()
    noisy[flip] = (y[flip] + shift.to(y.device)) % num_classes
    return noisy


def epoch_orders(n: int, g: torch.Generator):
    """Endless stream of epoch permutations of range(n), drawn from the run's order generator."""
    while True:
        yield torch.randperm(n, generator=g)


def batch_indices(
    n: int, batch_size: int, g: torch.Generator, order: str = "shuffle", drop_last: bool = False
):
    """Endless stream of index batches, ceil(n/batch_size) per epoch (floor with `drop_last`: the last, partial
    batch of each epoch is left out, as PyTorch's DataLoader(drop_last=True) does), drawn from the run's order
    generator: shuffle: a fresh permutation each epoch, cut into batches; fixed: one permutation, reused every
    epoch; replacement: every batch sampled uniformly with replacement."""
    if order == "replacement":
        while True:
            yield torch.randint(n, (min(batch_size, n),), generator=g)
    orders = epoch_orders(n, g)
    if order == "fixed":
        orders = itertools.repeat(next(orders))
    size = min(batch_size, n)
    for permutation in orders:
        yield from (b for b in permutation.split(size) if len(b) == size or not drop_last)


def crop_padding(size: int) -> int:
    """Zero padding of a random crop along an axis of `size` pixels: size/8 (4 on CIFAR's 32, 1 on 8x8 digits,
    5 on MNIST-1D's 40), and none along an axis of one pixel (1-D signals move along their length only)."""
    return 0 if size == 1 else max(1, size // 8)


def draw_augmentation(n: int, shape: tuple[int, int], kind: str, g: torch.Generator):
    """The random part of augmenting n images of (H, W) `shape`: (crop offsets (n, 2) or None, flip mask (n,)
    or None). Offsets index the padded image, so `crop_padding` is no move.

    Drawn on the CPU from the run's generator, in the same order whatever the device, so a run's
    augmentations are reproducible across devices and engines.
    """
    if min(shape) > 1 and shape[0] != shape[1]:
        raise ValueError(f"crops are drawn for square images or 1-D signals, not shape {shape}")
    shifts = None
    if "crop" in kind:
        shifts = torch.randint(0, 2 * crop_padding(max(shape)) + 1, (n, 2), generator=g)
        if min(shape) == 1:  # a signal: no vertical move
            shifts[:, shape.index(1)] = 0
    flips = torch.rand(n, generator=g) < 0.5 if "flip" in kind else None
    return shifts, flips


def apply_augmentation(
    x: torch.Tensor, shifts: torch.Tensor | None, flips: torch.Tensor | None
) -> torch.Tensor:
    """Translate (crop of a zero-padded image, `crop_padding` per axis) and flip, batched.

    One call serves the batches of all K runs of a shard at once: the draws are simply concatenated.
    """
    n, _, h, w = x.shape
    if shifts is not None:
        pad_h, pad_w = crop_padding(h), crop_padding(w)
        shifts = shifts.to(x.device)
        padded = torch.nn.functional.pad(x, (pad_w, pad_w, pad_h, pad_h))
        rows = torch.arange(h, device=x.device)[None, :] + shifts[:, :1]
        cols = torch.arange(w, device=x.device)[None, :] + shifts[:, 1:]
        batch = torch.arange(n, device=x.device)[:, None, None]
        # contiguous again: torch 2.14's CPU convolutions corrupt memory on this channels-last view when a
        # layer has 2-4 channels (crashes measured on ResNet-18 width 2 and a 3->2 conv on 32x32 images)
        x = (
            padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
            .permute(0, 3, 1, 2)
            .contiguous()
        )
    if flips is not None:
        x = torch.where(flips.to(x.device)[:, None, None, None], x.flip(-1), x)
    return x


def augment(x: torch.Tensor, kind: str, g: torch.Generator) -> torch.Tensor:
    """Random flips and translations of a batch, drawn from the run's augmentation generator."""
    return apply_augmentation(x, *draw_augmentation(len(x), tuple(x.shape[-2:]), kind, g))


def augmented_copies(
    x: torch.Tensor, y: torch.Tensor, copies: int, kind: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed dataset of `copies` augmented versions of every example (Geiping et al.'s "10x CIFAR"): each
    copy is one augmentation draw per example from a fixed stream, the same for every run, made once and then
    trained on without live augmentation."""
    x = torch.cat([augment(x, kind, generator("copies", r)) for r in range(copies)])
    return x, y.repeat(copies)
