"""Model families, each with a width knob and the same constructor for any input shape and class count.

- `cnn`: a small VGG-style net (widths w, 2w, 4w), the default for CPU-scale grids.
- `vgg16`: VGG-16 with BatchNorm, stage widths w, 2w, 4w, 8w, 8w (w=64: the usual 14.7M-parameter CIFAR net).
- `resnet18`: ResNet-18 with stage widths k, 2k, 4k, 8k as in the double-descent literature (k=64 is the
  standard net).
- `fast`: an airbench-style net: a frozen 2x2 patch-whitening convolution initialised from the training
  images, then three conv-pool-BN-GELU blocks (widths w, 4w, 4w; w=64 is airbench94's 64/256/256) and a
  scaled linear head. Pools use ceil_mode so 8x8 inputs work too.
- `mlp`: a fully connected net, two hidden layers of 16w units, no BatchNorm (the model on which gradient
  accumulation must equal one large batch exactly).
- `conv1d`: for 1-D signals held as (C, 1, L): three conv1d-BN-ReLU layers of width w (kernel 5, then two
  of kernel 3 and stride 2), flattened into a linear head; w=32 on MNIST-1D is ~9.7k parameters.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from chaosgrid.data import NUM_CLASSES


def conv_bn(c_in: int, c_out: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out)]


class GlobalPool(nn.Module):
    """Mean or max over the spatial dimensions, flattened; unlike nn.AdaptiveAvgPool2d it has a fast vmap rule."""

    def __init__(self, reduce: str = "mean"):
        super().__init__()
        self.reduce = reduce

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean((2, 3)) if self.reduce == "mean" else x.amax((2, 3))


class CNN(nn.Sequential):
    def __init__(self, in_channels: int, num_classes: int, width: int):
        w = width
        super().__init__(
            *conv_bn(in_channels, w), nn.ReLU(),
            *conv_bn(w, 2 * w), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
            *conv_bn(2 * w, 4 * w), nn.ReLU(), nn.MaxPool2d(2, ceil_mode=True),
            GlobalPool(), nn.Linear(4 * w, num_classes),
        )  # fmt: skip


class VGG16(nn.Sequential):
    """VGG-16 with BatchNorm: 13 conv-BN-ReLU layers in five stages of widths w, 2w, 4w, 8w, 8w, each
    ending in a 2x2 max-pool, then a global pool and one linear layer (the CIFAR VGG16-BN of
    dnn-mode-connectivity has a 512-512-10 classifier with dropout; one layer keeps vmap free of randomness)."""

    STAGES = ((1, 2), (2, 2), (4, 3), (8, 3), (8, 3))  # (width multiple, convolutions)

    def __init__(self, in_channels: int, num_classes: int, width: int):
        layers, c_in = [], in_channels
        for multiple, convolutions in self.STAGES:
            for _ in range(convolutions):
                layers += [*conv_bn(c_in, multiple * width), nn.ReLU()]
                c_in = multiple * width
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        super().__init__(*layers, GlobalPool(), nn.Linear(c_in, num_classes))


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(*conv_bn(c_in, c_out, stride), nn.ReLU(), *conv_bn(c_out, c_out))
        self.skip = (
            nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
            if stride != 1 or c_in != c_out
            else nn.Identity()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.body(x) + self.skip(x))


class ResNet18(nn.Sequential):
    def __init__(self, in_channels: int, num_classes: int, width: int):
        k = width
        stages, c_in = [], k
        for i, c in enumerate((k, 2 * k, 4 * k, 8 * k)):
            stride = 1 if i == 0 else 2
            stages += [BasicBlock(c_in, c, stride), BasicBlock(c, c, 1)]
            c_in = c
        super().__init__(
            *conv_bn(in_channels, k), nn.ReLU(), *stages,
            GlobalPool(), nn.Linear(8 * k, num_classes),
        )  # fmt: skip


class Whitening(nn.Module):
    """Frozen 2x2 convolution whose filters are the (+/-) eigenvectors of the patch covariance, scaled.

    A buffer, not a parameter: airbench found learning it gains nothing, and freezing it keeps the first
    layer identical across the runs of a shard.
    """

    def __init__(self, in_channels: int):
        super().__init__()
        self.register_buffer("weight", torch.zeros(2 * in_channels * 4, in_channels, 2, 2))

    @torch.no_grad()
    def fit(self, images: torch.Tensor, eps: float = 5e-4) -> None:
        c = images.shape[1]
        patches = images.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, c * 4).double()
        patches = patches - patches.mean(0)
        eigenvalues, eigenvectors = torch.linalg.eigh(patches.T @ patches / len(patches))
        filters = (eigenvectors.T / torch.sqrt(eigenvalues + eps)[:, None]).reshape(-1, c, 2, 2).float()
        self.weight.copy_(torch.cat([filters, -filters]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.conv2d(x, self.weight)


class FastNet(nn.Module):
    def __init__(self, in_channels: int, num_classes: int, width: int):
        super().__init__()
        widths = (width, 4 * width, 4 * width)
        self.whiten = Whitening(in_channels)
        layers: list[nn.Module] = [nn.GELU()]
        c_in = 2 * in_channels * 4
        for c in widths:
            layers += [
                nn.Conv2d(c_in, c, 3, padding=1, bias=False), nn.MaxPool2d(2, ceil_mode=True),
                nn.BatchNorm2d(c), nn.GELU(),
                *conv_bn(c, c), nn.GELU(),
            ]  # fmt: skip
            c_in = c
        layers += [GlobalPool("max"), nn.Linear(c_in, num_classes, bias=False)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.whiten(x)) / 9.0  # airbench's logit scale


class MLP(nn.Sequential):
    def __init__(self, in_shape: tuple[int, ...], num_classes: int, width: int):
        hidden = 16 * width
        super().__init__(
            nn.Flatten(), nn.Linear(math.prod(in_shape), hidden), nn.ReLU(),
            nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, num_classes),
        )  # fmt: skip


class Conv1dNet(nn.Sequential):
    def __init__(self, in_shape: tuple[int, ...], num_classes: int, width: int):
        channels, _, length = in_shape
        w = width
        conv = lambda c_in, k, stride: [nn.Conv1d(c_in, w, k, stride, k // 2, bias=False), nn.BatchNorm1d(w), nn.ReLU()]
        super().__init__(
            nn.Flatten(1, 2), *conv(channels, 5, 1), *conv(w, 3, 2), *conv(w, 3, 2),
            nn.Flatten(), nn.Linear(w * math.ceil(length / 4), num_classes),
        )  # fmt: skip
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


CONVOLUTIONAL = {
    "cnn": CNN,
    "vgg16": VGG16,
    "resnet18": ResNet18,
    "fast": FastNet,
}  # built from the input's channel count
MODELS = {**CONVOLUTIONAL, "mlp": MLP, "conv1d": Conv1dNet}  # the others take the whole input shape


def parameter_names(name: str, in_shape: tuple[int, ...], width: int) -> list[str]:
    """The trainable tensors of a model (its state dict's other entries are buffers), from a copy on the meta
    device: nothing is allocated or initialised."""
    with torch.device("meta"):
        return [n for n, _ in build(name, in_shape, NUM_CLASSES, width).named_parameters()]


def build(name: str, in_shape: tuple[int, ...], num_classes: int, width: int) -> nn.Module:
    """A fresh model of family `name` for inputs of shape (C, H, W), with the current global RNG state."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name](in_shape[0] if name in CONVOLUTIONAL else in_shape, num_classes, width)
