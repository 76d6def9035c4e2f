"""Distribution shifts for evaluation: corruption families at five severities, as batched tensor ops.

Shifts are an evaluation axis: every run is trained once and evaluated on the clean test set and on every
shifted copy of it. Each corruption maps images in [0, 1] to images in [0, 1], is deterministic (its noise
comes from a generator seeded by the shift's name and severity) and runs on whatever device holds the
images. For cifar10, `cifar10_1` and `cifar10c_<corruption>` read the published shifted sets from disk.
The probe set `planes` (chaosgrid.planes) is made from its anchors as it is evaluated, unclamped.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from chaosgrid import inputs
from chaosgrid.data import Dataset, cifar10_1, cifar10_c, own_set
from chaosgrid.evalsets import OWN_PREFIX, PLANES, eval_name, is_clean
from chaosgrid.inputs import load_eval_set, load_triplets
from chaosgrid.plan.blocks import PLANE_DEFAULTS, triplets_key
from chaosgrid.plan.paths import prepared_inputs
from chaosgrid.planes import anchors, probe_set
from chaosgrid.sampling import generator


def gaussian_noise(x: torch.Tensor, severity: int) -> torch.Tensor:
    sigma = (0.04, 0.08, 0.12, 0.18, 0.26)[severity - 1]
    g = generator(f"gaussian_noise:{severity}", 0)
    return x + sigma * torch.randn(x.shape, generator=g).to(x.device)


def gaussian_blur(x: torch.Tensor, severity: int) -> torch.Tensor:
    sigma = (0.5, 0.75, 1.0, 1.25, 1.5)[severity - 1]  # pixels
    radius = math.ceil(2 * sigma)
    t = torch.arange(-radius, radius + 1, dtype=x.dtype, device=x.device)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = x.shape[1]
    x = F.pad(x, (radius,) * 4, mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def contrast(x: torch.Tensor, severity: int) -> torch.Tensor:
    factor = (0.6, 0.45, 0.35, 0.25, 0.15)[severity - 1]
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * factor + mean


def brightness(x: torch.Tensor, severity: int) -> torch.Tensor:
    return x + (0.1, 0.2, 0.3, 0.4, 0.5)[severity - 1]


def pixelate(x: torch.Tensor, severity: int) -> torch.Tensor:
    scale = (0.8, 0.7, 0.6, 0.5, 0.4)[severity - 1]
    h, w = x.shape[-2:]
    small = F.interpolate(x, size=(max(2, round(h * scale)), max(2, round(w * scale))), mode="area")
    return F.interpolate(small, size=(h, w), mode="nearest")


def _dct_matrix(n: int, device: torch.device) -> torch.Tensor:
    k = torch.arange(n, dtype=torch.float32, device=device)
    m = torch.cos(math.pi * (2 * k[None, :] + 1) * k[:, None] / (2 * n)) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return m


def jpeg(x: torch.Tensor, severity: int) -> torch.Tensor:
    """JPEG-like compression: 8x8 block DCT, quantisation coarser at higher frequency, inverse DCT."""
    step = (0.02, 0.04, 0.07, 0.11, 0.16)[severity - 1]
    n, c, h, w = x.shape
    b = 8
    ph, pw = (-h) % b, (-w) % b
    xp = F.pad(x, (0, pw, 0, ph), mode="replicate")
    blocks = xp.unfold(2, b, b).unfold(3, b, b)  # n, c, H/8, W/8, 8, 8
    d = _dct_matrix(b, x.device)
    coef = d @ blocks @ d.T
    freq = torch.arange(b, device=x.device)
    q = step * (1 + freq[:, None] + freq[None, :]).float()
    coef = torch.round(coef / q) * q
    blocks = d.T @ coef @ d
    out = blocks.permute(0, 1, 2, 4, 3, 5).reshape(n, c, h + ph, w + pw)
    return out[:, :, :h, :w]


CORRUPTIONS: dict[str, Callable[[torch.Tensor, int], torch.Tensor]] = {
    "gaussian_noise": gaussian_noise,
    "gaussian_blur": gaussian_blur,
    "contrast": contrast,
    "brightness": brightness,
    "pixelate": pixelate,
    "jpeg": jpeg,
}


def shifted_set(
    data: Dataset, name: str, severity: int, root: Path | str = "data"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (in [0, 1], unnormalised) and labels of one shifted evaluation set, on the device of `data`: a
    corruption of the test set, a published set read from `root`, or a further set of the user's dataset."""
    if name.startswith(OWN_PREFIX):
        return own_set(data.name, name.removeprefix(OWN_PREFIX))
    if name == "cifar10_1":
        return cifar10_1(Path(root))
    if name.startswith("cifar10c_"):
        return cifar10_c(Path(root), name.removeprefix("cifar10c_"), severity)
    return CORRUPTIONS[name](data.x_test, severity).clamp(0, 1), data.y_test


def eval_sets(
    data: Dataset,
    pairs: list[tuple[str, int]],
    root: Path | str = "data",
    prepared: dict[str, Path | str] | None = None,
    planes: dict = PLANE_DEFAULTS,
) -> dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]]:
    """Normalised images and labels of every evaluation set, on the dataset's device: the shifted ones
    read from their `prepared` files by name (chaosgrid.plan.paths.prepared_inputs) when given, else made
    here; the probe planes of the complete spec `planes` made as they are evaluated, from prepared anchors
    when given."""
    sets = {}
    for name, severity in pairs:
        if (
            prepared is not None
            and not is_clean(name, severity)
            and eval_name(name, severity) not in prepared
        ):
            raise ValueError(f"no prepared file of the evaluation set {eval_name(name, severity)}")
        if name == PLANES:
            trip = load_triplets(prepared[PLANES]) if prepared is not None else anchors(data, planes)
            sets[name, severity] = probe_set(data, planes, trip)
            continue
        if is_clean(name, severity):
            x, y = data.x_test, data.y_test
        elif prepared is not None:
            x, y = load_eval_set(prepared[eval_name(name, severity)])
        else:
            x, y = shifted_set(data, name, severity, root)
        device = data.x_test.device
        sets[name, severity] = (data.normalize(x.to(device)), y.to(device))
    return sets


def prepare_inputs(
    data: Dataset,
    pairs: list[tuple[str, int]],
    folder: Path | str,
    root: Path | str = "data",
    planes: dict = PLANE_DEFAULTS,
) -> dict[str, Path]:
    """Write `data`, its shifted sets of `pairs` and the anchors of the complete `planes` spec (when pairs has
    them) into `folder` in one process, as the workflow's prepare jobs do one file each (benchmarks time
    shard jobs on prepared inputs this way); the files by name, as `eval_sets` reads them."""
    files = prepared_inputs(folder, pairs, triplets_key(planes))
    inputs.save_dataset(data, files["data"])
    for name, severity in pairs:
        if name == PLANES:
            inputs.save_triplets(anchors(data, planes), files[PLANES])
        elif not is_clean(name, severity):
            inputs.save_eval_set(*shifted_set(data, name, severity, root), files[eval_name(name, severity)])
    return files
