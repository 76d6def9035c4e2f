"""Model families, each with a width knob and the same constructor for any input shape and class count.

- `cnn`: a small VGG-style net (widths w, 2w, 4w), the default for CPU-scale grids.
- `vgg16`: VGG-16 with BatchNorm, stage widths w, 2w, 4w, 8w, 8w (w=64: the usual 14.7M-parameter CIFAR net).
- `vgg16_dmc`: the same features with dnn-mode-connectivity's dropout classifier (8w-8w; w=64: 15.2M).
- `resnet18`: ResNet-18 with stage widths k, 2k, 4k, 8k as in the double-descent literature (k=64 is the
  standard net).
- `preact_resnet18`: pre-activation ResNet-18 with stage widths k, 2k, 4k, 8k (the double-descent model).
- `wrn28`: Wide ResNet-28-k, group widths 16k, 32k, 64k.
- `densenet`: a small DenseNet-BC, three blocks of 6 bottleneck layers, growth rate w.
- `vit`, `mixer`: a vision transformer and an MLP-Mixer on 4x4 patches (chaosgrid.patch_models).
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
import warnings

import torch
from torch import nn

from chaosgrid import plugins
from chaosgrid.footprint import DATASETS, FIT_WIDTHS, size_key
from chaosgrid.patch_models import Mixer, ViT


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
            *conv_bn(in_channels, w),
            nn.ReLU(),
            *conv_bn(w, 2 * w),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            *conv_bn(2 * w, 4 * w),
            nn.ReLU(),
            nn.MaxPool2d(2, ceil_mode=True),
            GlobalPool(),
            nn.Linear(4 * w, num_classes),
        )


class VGG16(nn.Sequential):
    """VGG-16 with BatchNorm: 13 conv-BN-ReLU layers in five stages of widths w, 2w, 4w, 8w, 8w, each
    ending in a 2x2 max-pool, then a global pool and one linear layer (kuangliu's CIFAR VGG, which the
    decision-region papers train)."""

    STAGES = ((1, 2), (2, 2), (4, 3), (8, 3), (8, 3))  # (width multiple, convolutions)

    def __init__(
        self, in_channels: int, num_classes: int, width: int, classifier: tuple[nn.Module, ...] = ()
    ):
        layers, c_in = [], in_channels
        for multiple, convolutions in self.STAGES:
            for _ in range(convolutions):
                layers += [*conv_bn(c_in, multiple * width), nn.ReLU()]
                c_in = multiple * width
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
        super().__init__(*layers, GlobalPool(), *classifier, nn.Linear(c_in, num_classes))


class VGG16DMC(VGG16):
    """dnn-mode-connectivity's CIFAR VGG16BN (the ensembles and curves papers' net): `VGG16`'s features, then
    an 8w-8w classifier with dropout (p=0.5) before each hidden layer. Its dropout draws from each run's own
    seed, on the loop engine (`engine.LoopStack`)."""

    def __init__(self, in_channels: int, num_classes: int, width: int):
        c = 8 * width
        hidden = (nn.Dropout(), nn.Linear(c, c), nn.ReLU(), nn.Dropout(), nn.Linear(c, c), nn.ReLU())
        super().__init__(in_channels, num_classes, width, hidden)


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
            *conv_bn(in_channels, k),
            nn.ReLU(),
            *stages,
            GlobalPool(),
            nn.Linear(8 * k, num_classes),
        )


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
                nn.Conv2d(c_in, c, 3, padding=1, bias=False),
                nn.MaxPool2d(2, ceil_mode=True),
                nn.BatchNorm2d(c),
                nn.GELU(),
                *conv_bn(c, c),
                nn.GELU(),
            ]
            c_in = c
        layers += [GlobalPool("max"), nn.Linear(c_in, num_classes, bias=False)]
        self.body = nn.Sequential(*layers)

    def fit_to_data(self, x: torch.Tensor) -> None:
        """Data-dependent initialisation (chaosgrid.train.init_model's hook): the whitening from the images."""
        self.whiten.fit(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(self.whiten(x)) / 9.0  # airbench's logit scale


class MLP(nn.Sequential):
    def __init__(self, in_shape: tuple[int, ...], num_classes: int, width: int):
        hidden = 16 * width
        super().__init__(
            nn.Flatten(),
            nn.Linear(math.prod(in_shape), hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, num_classes),
        )


class PreActBlock(nn.Module):
    """BN-ReLU-conv twice, the shortcut taken after the first BN-ReLU when the shape changes (He et al. 2016b)."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.bn1, self.conv1 = nn.BatchNorm2d(c_in), nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn2, self.conv2 = nn.BatchNorm2d(c_out), nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.skip = nn.Conv2d(c_in, c_out, 1, stride, bias=False) if stride != 1 or c_in != c_out else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        shortcut = self.skip(out) if self.skip is not None else x
        out = self.conv1(out)
        return self.conv2(torch.relu(self.bn2(out))) + shortcut


def _preact_stages(c_in: int, widths: tuple[int, ...], blocks: int) -> tuple[list[nn.Module], int]:
    """Stages of `blocks` pre-activation blocks, the first of each (but the first stage) striding by 2."""
    layers = []
    for i, c in enumerate(widths):
        for b in range(blocks):
            layers.append(PreActBlock(c_in, c, 2 if i > 0 and b == 0 else 1))
            c_in = c
    return layers, c_in


class PreActResNet18(nn.Sequential):
    """Pre-activation ResNet-18 with stage widths k, 2k, 4k, 8k (Nakkiran et al.'s double-descent model,
    dbViz's resnet18k), a final BN-ReLU before the pool."""

    def __init__(self, in_channels: int, num_classes: int, width: int):
        stages, c_out = _preact_stages(width, (width, 2 * width, 4 * width, 8 * width), 2)
        super().__init__(
            nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
            *stages,
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            GlobalPool(),
            nn.Linear(c_out, num_classes),
        )


class WideResNet28(nn.Sequential):
    """Wide ResNet-28-k (Zagoruyko and Komodakis): three groups of four pre-activation blocks of widths 16k,
    32k, 64k after a 16-channel convolution; k = 10 is the usual WRN-28-10."""

    def __init__(self, in_channels: int, num_classes: int, width: int):
        stages, c_out = _preact_stages(16, (16 * width, 32 * width, 64 * width), 4)
        super().__init__(
            nn.Conv2d(in_channels, 16, 3, 1, 1, bias=False),
            *stages,
            nn.BatchNorm2d(c_out),
            nn.ReLU(),
            GlobalPool(),
            nn.Linear(c_out, num_classes),
        )


class DenseLayer(nn.Module):
    """BN-ReLU-conv1x1 (4g channels) then BN-ReLU-conv3x3 (g channels), concatenated to its input."""

    def __init__(self, c_in: int, growth: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.BatchNorm2d(c_in),
            nn.ReLU(),
            nn.Conv2d(c_in, 4 * growth, 1, bias=False),
            nn.BatchNorm2d(4 * growth),
            nn.ReLU(),
            nn.Conv2d(4 * growth, growth, 3, 1, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


class DenseNet(nn.Sequential):
    """A small DenseNet-BC (Huang et al. 2017): three dense blocks of 6 bottleneck layers with growth rate w,
    halving transitions between them (w = 12 is DenseNet-BC-40's growth rate)."""

    def __init__(self, in_channels: int, num_classes: int, width: int):
        c = 2 * width
        layers: list[nn.Module] = [nn.Conv2d(in_channels, c, 3, 1, 1, bias=False)]
        for block in range(3):
            for _ in range(6):
                layers.append(DenseLayer(c, width))
                c += width
            if block < 2:
                layers += [
                    nn.BatchNorm2d(c),
                    nn.ReLU(),
                    nn.Conv2d(c, c // 2, 1, bias=False),
                    nn.AvgPool2d(2, ceil_mode=True),
                ]
                c //= 2
        super().__init__(*layers, nn.BatchNorm2d(c), nn.ReLU(), GlobalPool(), nn.Linear(c, num_classes))


class Conv1dNet(nn.Sequential):
    def __init__(self, in_shape: tuple[int, ...], num_classes: int, width: int):
        channels, _, length = in_shape
        w = width
        conv = lambda c_in, k, stride: [
            nn.Conv1d(c_in, w, k, stride, k // 2, bias=False),
            nn.BatchNorm1d(w),
            nn.ReLU(),
        ]
        super().__init__(
            nn.Flatten(1, 2),
            *conv(channels, 5, 1),
            *conv(w, 3, 2),
            *conv(w, 3, 2),
            nn.Flatten(),
            nn.Linear(w * math.ceil(length / 4), num_classes),
        )
        for m in self.modules():
            if isinstance(m, nn.Conv1d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")


CONVOLUTIONAL = {  # built from the input's channels
    "cnn": CNN,
    "vgg16": VGG16,
    "vgg16_dmc": VGG16DMC,
    "resnet18": ResNet18,
    "preact_resnet18": PreActResNet18,
    "wrn28": WideResNet28,
    "densenet": DenseNet,
    "fast": FastNet,
}
MODELS = {  # the others take the input shape
    **CONVOLUTIONAL,
    "mlp": MLP,
    "vit": ViT,
    "mixer": Mixer,
    "conv1d": Conv1dNet,
}


def parameter_names(name: str, in_shape: tuple[int, ...], num_classes: int, width: int) -> list[str]:
    """The trainable tensors of a model (its state dict's other entries are buffers), from a copy on the meta
    device: nothing is allocated or initialised."""
    with torch.device("meta"):
        return [n for n, _ in build(name, in_shape, num_classes, width).named_parameters()]


def measured_sizes(
    name: str, in_shape: tuple[int, ...], num_classes: int, width: int
) -> tuple[int, int, int]:
    """(trainable parameters, bytes autograd saves per training example, FLOPs of one example's forward pass)
    of a model, measured on the meta device (nothing allocated): the saved tensors of a training forward
    pass at two batch sizes, their difference per example (what a batch adds: parameters and their views
    are saved at every size); FLOPs as torch's FlopCounterMode counts them (a multiply-add is two; matrix
    products and convolutions only)."""

    from torch.utils.flop_counter import FlopCounterMode  # 0.15 s of imports (triton) that a job never needs

    def saved(batch: int) -> tuple[int, int, int]:
        kept: dict[int, torch.Tensor] = {}  # by id, held so that no id is reused while counting

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            kept[id(tensor)] = tensor
            return tensor

        with torch.device("meta"):
            model = build(name, in_shape, num_classes, width).train()
            x = torch.empty(batch, *in_shape)
        with (
            torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor),
            FlopCounterMode(display=False) as flops,
        ):
            model(x)
        parameters = sum(p.numel() for p in model.parameters())
        return parameters, sum(t.numel() * t.element_size() for t in kept.values()), flops.get_total_flops()

    (parameters, two, flops), (_, four, _) = saved(2), saved(4)
    return parameters, (four - two) // 2, flops // 2


def size_table() -> dict:
    """`chaosgrid/model_sizes.json` (what planning estimates memory from, `chaosgrid.footprint`): for each
    built-in model and built-in dataset's input, its parameters and saved bytes per example as polynomials
    in the width, fitted at three consecutive widths."""
    w, _, _ = FIT_WIDTHS
    table = {}
    for name in MODELS:
        for shape, classes in sorted({(shape, classes) for shape, classes, _, _ in DATASETS.values()}):
            try:
                with warnings.catch_warnings(action="ignore"):  # a failing build may warn first
                    (p1, s1, f1), (p2, s2, f2), (p3, _, f3) = (
                        measured_sizes(name, shape, classes, width) for width in FIT_WIDTHS
                    )
            except RuntimeError:  # an input it does not take (conv1d on images, 4x4 patches of a signal)
                continue
            table[size_key(name, shape, classes)] = {
                "parameters": _quadratic(w, p1, p2, p3),
                "saved_bytes": [s1 - (s2 - s1) * w, s2 - s1],
                "flops": _quadratic(w, f1, f2, f3),
            }
    return table


def _quadratic(w: int, y1: int, y2: int, y3: int) -> list[int]:
    """[a0, a1, a2] with a0 + a1 x + a2 x^2 = y1, y2, y3 at x = w, w + 1, w + 2 (exact in integers)."""
    a2 = (y3 - 2 * y2 + y1) // 2
    a1 = y2 - y1 - a2 * (2 * w + 1)
    return [y1 - a1 * w - a2 * w * w, a1, a2]


def build(name: str, in_shape: tuple[int, ...], num_classes: int, width: int) -> nn.Module:
    """A fresh model of family `name` for inputs of shape (C, H, W), with the current global RNG state; a name
    "package.module:function" calls the user's own `function(in_shape, num_classes, width)`, which must
    return an nn.Module (a `fit_to_data(x)` method, if it has one, gets training images after init)."""
    if plugins.is_reference(name):
        model = plugins.load(name)(tuple(in_shape), num_classes, width)
        if not isinstance(model, nn.Module):
            raise plugins.PluginError(
                f"model {name!r} returned {type(model).__name__}, not a torch.nn.Module"
            )
        return model
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    return MODELS[name](in_shape[0] if name in CONVOLUTIONAL else in_shape, num_classes, width)
