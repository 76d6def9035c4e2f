"""A model of the lab's own: any callable (in_shape, num_classes, width) -> torch.nn.Module."""

from torch import nn


def small_net(in_shape: tuple[int, ...], num_classes: int, width: int) -> nn.Module:
    """Two conv-BatchNorm-ReLU layers of `width` channels and a linear head, for images (C, H, W) or
    signals held as (C, 1, L)."""
    channels, height, length = in_shape
    kernel = (3, 3) if height > 1 else (1, 3)
    padding = (1, 1) if height > 1 else (0, 1)
    return nn.Sequential(
        nn.Conv2d(channels, width, kernel, padding=padding), nn.BatchNorm2d(width), nn.ReLU(),
        nn.Conv2d(width, width, kernel, padding=padding), nn.BatchNorm2d(width), nn.ReLU(),
        nn.AdaptiveAvgPool2d((1, min(4, length))), nn.Flatten(), nn.Linear(width * min(4, length), num_classes),
    )  # fmt: skip
