"""UNet feature networks: the plain UNet and the large-kernel UNet (LKU-Net style)."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import FeatureNetwork
from .encoder import Encoder, encoder_widths, level_heads
from .layers import make_block


class UNet(FeatureNetwork):
    """Encoder, then a decoder that upsamples (linear) to each finer stage and merges its skip
    connection; a 3-wide convolution of the decoder at each requested scale gives that level.

    Args (besides :class:`FeatureNetwork`'s):
        widths: channels of the encoder stages (full resolution first); default deep enough for
            the coarsest scale plus one level.
        norm: ``instance``, ``group`` or ``none``.
        block: ``conv`` (two 3-wide convolutions) or ``large_kernel``; ``kernel_size`` of the latter.
    """

    def __init__(
        self,
        dims: int = 2,
        in_channels: int = 1,
        out_channels: int | Sequence[int] = 16,
        scales: Sequence[int] = (4, 2, 1),
        widths: Sequence[int] | None = None,
        norm: str = "instance",
        block: str = "conv",
        kernel_size: int = 5,
    ) -> None:
        super().__init__(dims, in_channels, out_channels, scales)
        widths = encoder_widths(self, widths)
        self.encoder = Encoder(dims, in_channels, widths, norm, block, kernel_size)
        self.decoder = nn.ModuleDict(
            {
                str(level): make_block(block, dims, widths[level + 1] + widths[level], widths[level], norm, kernel_size)
                for level in range(min(self.levels), len(widths) - 1)
            }
        )
        self.heads = level_heads(self, widths)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Feature pyramid, coarse to fine: ``[B, C_s, *ceil(S / s)]`` per scale ``s``."""
        self.check_input(image)
        stages = self.encoder(image)
        decoded = {len(stages) - 1: stages[-1]}
        x = stages[-1]
        for level in range(len(stages) - 2, min(self.levels) - 1, -1):
            skip = stages[level]
            x = F.interpolate(
                x, size=skip.shape[2:], mode="bilinear" if self.dims == 2 else "trilinear", align_corners=True
            )
            x = self.decoder[str(level)](torch.cat([x, skip], dim=1))
            decoded[level] = x
        return [head(decoded[level]) for head, level in zip(self.heads, self.levels)]


class LKUNet(UNet):
    """UNet with LKU-Net's large-kernel blocks (Jia et al., 2022): ``kernel_size``-wide, 3-wide and
    1-wide convolutions and the identity in parallel in every block."""

    def __init__(
        self,
        dims: int = 2,
        in_channels: int = 1,
        out_channels: int | Sequence[int] = 16,
        scales: Sequence[int] = (4, 2, 1),
        widths: Sequence[int] | None = None,
        norm: str = "instance",
        kernel_size: int = 5,
    ) -> None:
        super().__init__(dims, in_channels, out_channels, scales, widths, norm, "large_kernel", kernel_size)
