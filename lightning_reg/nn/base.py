"""What every feature network shares: its scales, its channels per scale, and input checks."""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn


class FeatureNetwork(nn.Module):
    """Maps an image ``[B, C_in, *S]`` to a feature pyramid, coarse to fine.

    Args:
        dims: 2 or 3 spatial dimensions.
        in_channels: channels of the input image.
        out_channels: feature channels, one number for every scale or one per scale.
        scales: downsampling factors of the pyramid levels (powers of two), e.g. ``(4, 2, 1)``;
            level ``s`` has spatial size ``ceil(S / s)``.
    """

    def __init__(
        self,
        dims: int = 2,
        in_channels: int = 1,
        out_channels: int | Sequence[int] = 16,
        scales: Sequence[int] = (4, 2, 1),
    ) -> None:
        super().__init__()
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        scales = [int(s) for s in scales]
        if not scales or any(s < 1 or s & (s - 1) for s in scales) or sorted(set(scales), reverse=True) != scales:
            raise ValueError(f"scales must be distinct powers of two, coarse to fine (e.g. 4 2 1), got {scales}")
        channels = (
            [int(out_channels)] * len(scales) if isinstance(out_channels, int) else [int(c) for c in out_channels]
        )
        if len(channels) != len(scales) or any(c < 1 for c in channels):
            raise ValueError(f"give one positive channel count, or one per scale {scales}; got {out_channels}")
        self.dims = dims
        self.in_channels = in_channels
        self.out_channels = channels
        self.scales = scales

    @property
    def levels(self) -> list[int]:
        """Encoder level (``log2`` of the scale) of each output, coarse to fine."""
        return [int(math.log2(s)) for s in self.scales]

    def check_input(self, image: torch.Tensor) -> None:
        """A clear error for an image this network cannot take."""
        if not isinstance(image, torch.Tensor):
            raise TypeError(f"{type(self).__name__} takes a tensor [B, C, *S], got {type(image).__name__}")
        if image.dim() != self.dims + 2:
            raise ValueError(
                f"{type(self).__name__} is a {self.dims}D network and takes [B, C, "
                f"{'D, ' if self.dims == 3 else ''}H, W]; got shape {tuple(image.shape)} "
                f"({image.dim() - 2}D). Set dims to match the data (command line: "
                f"--model.network.init_args.dims {image.dim() - 2})."
            )
        if image.shape[1] != self.in_channels:
            raise ValueError(
                f"{type(self).__name__} expects {self.in_channels} input channel(s), "
                f"got {image.shape[1]} (shape {tuple(image.shape)})"
            )
        if image.numel() == 0:
            raise ValueError(f"empty image: shape {tuple(image.shape)}")

    def output_shapes(self, shape: Sequence[int]) -> list[tuple[int, ...]]:
        """Spatial shapes of the pyramid for an input of spatial ``shape``."""
        return [tuple(math.ceil(n / s) for n in shape) for s in self.scales]
