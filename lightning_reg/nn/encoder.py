"""The convolutional encoder shared by the UNets, and the encoder-only feature network."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .base import FeatureNetwork
from .layers import conv, make_block, norm


class Encoder(nn.Module):
    """Stages at full, 1/2, 1/4, ... resolution: a block, then a stride-2 convolution to the next.

    Any input size works: a stride-2 stage of size ``n`` has size ``ceil(n / 2)``.
    """

    def __init__(
        self, dims: int, in_channels: int, widths: Sequence[int], norm_kind: str, block: str, kernel_size: int
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleList()
        previous = in_channels
        for level, width in enumerate(widths):
            down = (
                []
                if level == 0
                else [conv(dims, previous, width, 3, stride=2), norm(norm_kind, dims, width), nn.LeakyReLU(0.2)]
            )
            start = previous if level == 0 else width
            self.stages.append(nn.Sequential(*down, make_block(block, dims, start, width, norm_kind, kernel_size)))
            previous = width

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps of every stage, fine to coarse."""
        outputs = []
        for stage in self.stages:
            x = stage(x)
            outputs.append(x)
        return outputs


def default_widths(scales: Sequence[int], base: int = 16) -> list[int]:
    """Encoder widths deep enough for the coarsest scale plus one level: ``base * 2**level``, capped at 4x."""
    depth = max(scales).bit_length() + 1
    return [base * min(2**level, 4) for level in range(depth)]


def encoder_widths(network: FeatureNetwork, widths: Sequence[int] | None) -> list[int]:
    """``widths`` (or the default) checked to reach the network's coarsest scale."""
    widths = list(widths) if widths is not None else default_widths(network.scales)
    if len(widths) <= max(network.levels):
        raise ValueError(
            f"{len(widths)} encoder widths reach scale {2 ** (len(widths) - 1)}, "
            f"not the coarsest scale {max(network.scales)}"
        )
    return widths


def level_heads(network: FeatureNetwork, widths: Sequence[int]) -> nn.ModuleList:
    """One 3-wide convolution per pyramid level, from that level's stage width to its channels."""
    return nn.ModuleList(
        conv(network.dims, widths[level], channels) for level, channels in zip(network.levels, network.out_channels)
    )


class EncoderFeatures(FeatureNetwork):
    """Encoder only: each pyramid level is a 3-wide convolution of the encoder stage at its scale.

    Cheaper than a UNet; coarse features see no fine context.
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
        # no stage below the coarsest scale: it would go unused
        widths = encoder_widths(self, widths)[: max(self.levels) + 1]
        self.encoder = Encoder(dims, in_channels, widths, norm, block, kernel_size)
        self.heads = level_heads(self, widths)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Feature pyramid, coarse to fine: ``[B, C_s, *ceil(S / s)]`` per scale ``s``."""
        self.check_input(image)
        stages = self.encoder(image)
        return [head(stages[level]) for head, level in zip(self.heads, self.levels)]
