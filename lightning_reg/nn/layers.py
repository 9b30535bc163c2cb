"""Building blocks shared by the feature networks, for 2D and 3D from one code path."""

from __future__ import annotations

from typing import Any, Sequence, cast

import torch
import torch.nn.functional as F
from torch import nn

NORMS = ("instance", "group", "none")


def area_pool(features: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """``[B, C, *S]`` area-averaged to spatial ``shape`` (2D or 3D, from the tensor's dimensions)."""
    pool = F.adaptive_avg_pool2d if features.dim() == 4 else F.adaptive_avg_pool3d
    return pool(features, cast(Any, tuple(shape)))  # torch types a 2- or 3-tuple; either is one here


def conv(dims: int, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1) -> nn.Module:
    """``Conv2d``/``Conv3d`` with 'same' padding for odd kernels."""
    layer = getattr(nn, f"Conv{dims}d")
    return layer(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)


def norm(kind: str, dims: int, channels: int) -> nn.Module:
    """``instance`` (affine InstanceNorm), ``group`` (GroupNorm, up to 8 groups) or ``none``."""
    if kind == "instance":
        return getattr(nn, f"InstanceNorm{dims}d")(channels, affine=True)
    if kind == "group":
        groups = max(g for g in (8, 4, 2, 1) if channels % g == 0)
        return nn.GroupNorm(groups, channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; choose one of {', '.join(NORMS)}")


class ConvBlock(nn.Module):
    """Two 3-wide convolutions, each followed by normalization and LeakyReLU(0.2)."""

    def __init__(self, dims: int, in_channels: int, out_channels: int, norm_kind: str = "instance") -> None:
        super().__init__()
        self.body = nn.Sequential(
            conv(dims, in_channels, out_channels),
            norm(norm_kind, dims, out_channels),
            nn.LeakyReLU(0.2),
            conv(dims, out_channels, out_channels),
            norm(norm_kind, dims, out_channels),
            nn.LeakyReLU(0.2),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class LargeKernelBlock(nn.Module):
    """LKU-Net's block (Jia et al., 2022): parallel ``k``-wide, 3-wide and 1-wide convolutions and
    the identity, summed, then normalization and LeakyReLU(0.2)."""

    def __init__(
        self, dims: int, in_channels: int, out_channels: int, norm_kind: str = "instance", kernel_size: int = 5
    ) -> None:
        super().__init__()
        if kernel_size < 3 or kernel_size % 2 == 0:
            raise ValueError(f"kernel_size must be odd and >= 3, got {kernel_size}")
        self.project = conv(dims, in_channels, out_channels, 1) if in_channels != out_channels else nn.Identity()
        self.large = conv(dims, out_channels, out_channels, kernel_size)
        self.small = conv(dims, out_channels, out_channels, 3)
        self.point = conv(dims, out_channels, out_channels, 1)
        self.after = nn.Sequential(norm(norm_kind, dims, out_channels), nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.project(x)
        return self.after(self.large(x) + self.small(x) + self.point(x) + x)


def make_block(
    kind: str, dims: int, in_channels: int, out_channels: int, norm_kind: str, kernel_size: int
) -> nn.Module:
    """``conv`` (:class:`ConvBlock`) or ``large_kernel`` (:class:`LargeKernelBlock`)."""
    if kind == "conv":
        return ConvBlock(dims, in_channels, out_channels, norm_kind)
    if kind == "large_kernel":
        return LargeKernelBlock(dims, in_channels, out_channels, norm_kind, kernel_size)
    raise ValueError(f"unknown block {kind!r}; choose conv or large_kernel")
