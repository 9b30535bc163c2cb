"""Features that add to the classical solver: the image kept as it is, learned channels beside it and
a gate that weighs them, for the solver's ``added`` similarity (``solver.energy.similarity.AddedChannels``)."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .base import FeatureNetwork
from .layers import area_pool
from .unet import UNet


class AddedFeatures(FeatureNetwork):
    """``[image, learned, gate]`` per level: the image's channels unchanged (area-averaged to each
    scale, as :class:`IdentityFeatures`), ``learned`` channels of a UNet, and one channel constant at a
    learned gate that starts at 0. The ``added`` similarity weighs the learned channels by the gate, so
    an untrained model registers exactly as the classical solver with the image similarity, and
    training adds what the image lacks. With one level at scale 1 (the default) the solver makes its
    coarser levels as ``register`` makes them from an image, so the start is ``register``'s warp; with
    ``scales`` 4 2 1 it is ``IdentityFeatures``' (area-averaged levels).

    Unlike :class:`ResidualFeatures` (a correction added *into* the image's channels) the image is
    never changed: measured headroom was in channels that know the anatomy better than the image shows,
    added to it with the right weight; features that replace the image lost.

    Args (besides :class:`FeatureNetwork`'s ``dims`` and ``in_channels``):
        learned: learned channels.
        scales: the levels' downsampling factors, coarse to fine.
        widths: channels of the UNet's encoder stages, full resolution first.
        norm: ``instance``, ``group`` or ``none``.
        gate: the gate's start (0: the classical solver's warp until trained).
    """

    def __init__(
        self,
        dims: int = 2,
        in_channels: int = 1,
        learned: int = 8,
        scales: Sequence[int] = (1,),
        widths: Sequence[int] = (16, 32, 32, 64),
        norm: str = "instance",
        gate: float = 0.0,
    ) -> None:
        if learned < 1:
            raise ValueError(f"learned must be >= 1 channel, got {learned}")
        super().__init__(dims, in_channels, in_channels + learned + 1, scales)
        self.learned = int(learned)
        self.unet = UNet(dims, in_channels, learned, scales=self.scales, widths=widths, norm=norm)
        self.gate = nn.Parameter(torch.tensor(float(gate)))

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Per scale ``s``, coarse to fine, ``[B, C_in + learned + 1, *ceil(S / s)]``: the image, the
        learned channels, the gate."""
        self.check_input(image)
        levels = []
        for scale, shape, learned in zip(self.scales, self.output_shapes(image.shape[2:]), self.unet(image)):
            level = image if scale == 1 else area_pool(image, shape)
            gate = self.gate.to(image.dtype).expand(image.shape[0], 1, *shape)
            levels.append(torch.cat([level, learned, gate], dim=1))
        return levels
