"""Models on image patches: a Vision Transformer and an MLP-Mixer (4x4 patches, dimension 8w), as the
decision-region studies train them; images only (chaosgrid.cells.IMAGE_MODELS)."""

from __future__ import annotations

import math

import torch
from torch import nn


class Patches(nn.Module):
    """Non-overlapping `size` x `size` patches embedded linearly: (N, C, H, W) -> (N, tokens, dim)."""

    def __init__(self, in_channels: int, dim: int, size: int = 4):
        super().__init__()
        self.embed = nn.Conv2d(in_channels, dim, size, size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.embed(x).flatten(2).transpose(1, 2)


class Attention(nn.Module):
    """Multi-head self-attention written out (softmax(QK^T/sqrt(d))V): plain ops with vmap rules."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads, self.qkv, self.out = heads, nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        q, k, v = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        weights = (q @ k.transpose(-2, -1) / math.sqrt(d // self.heads)).softmax(-1)
        return self.out((weights @ v).transpose(1, 2).reshape(n, t, d))


def _mlp(dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm1, self.attention = nn.LayerNorm(dim), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim), _mlp(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViT(nn.Module):
    """A small vision transformer on 4x4 patches (dbViz's ViT4 at w = 64: dim 512, depth 6, 8 heads, MLP 512),
    dim 8w, a class token and learned positions; no dropout (one recipe for both engines)."""

    def __init__(
        self, in_shape: tuple[int, ...], num_classes: int, width: int, depth: int = 6, heads: int = 8
    ):
        super().__init__()
        dim, tokens = 8 * width, (in_shape[1] // 4) * (in_shape[2] // 4)
        self.patches = Patches(in_shape[0], dim)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.position = nn.Parameter(0.02 * torch.randn(1, tokens + 1, dim))
        self.blocks = nn.Sequential(*(TransformerBlock(dim, heads) for _ in range(depth)))
        self.head = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patches(x)
        tokens = torch.cat([self.cls.expand(len(tokens), -1, -1), tokens], 1) + self.position
        return self.head(self.blocks(tokens)[:, 0])


class MixerBlock(nn.Module):
    def __init__(self, tokens: int, dim: int):
        super().__init__()
        self.norm1, self.token_mlp = nn.LayerNorm(dim), _mlp(tokens, max(1, tokens // 2))
        self.norm2, self.channel_mlp = nn.LayerNorm(dim), _mlp(dim, 4 * dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.token_mlp(self.norm1(x).transpose(1, 2)).transpose(1, 2)
        return x + self.channel_mlp(self.norm2(x))


class TokenMean(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(1)


class Mixer(nn.Sequential):
    """MLP-Mixer on 4x4 patches (dbViz's MLPMixer4 at w = 64: dim 512, depth 12), dim 8w, token MLPs of half
    the tokens and channel MLPs of 4x the dim (lucidrains' expansion factors)."""

    def __init__(self, in_shape: tuple[int, ...], num_classes: int, width: int, depth: int = 12):
        dim, tokens = 8 * width, (in_shape[1] // 4) * (in_shape[2] // 4)
        super().__init__(
            Patches(in_shape[0], dim),
            *(MixerBlock(tokens, dim) for _ in range(depth)),
            nn.LayerNorm(dim),
            TokenMean(),
            nn.Linear(dim, num_classes),
        )
