"""Features that start as the classical solver: the image itself plus a learned correction whose
output convolution starts at zero (DIO's lung model adds its input back at each scale and
zero-initialises its output convolutions), so an untrained model registers exactly as the classical
solver with the same settings, and training can only move away from it where the loss says so."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .base import FeatureNetwork
from .unet import UNet


class ResidualFeatures(FeatureNetwork):
    """``image + correction(image)`` at full resolution, one level (scale 1): the solver makes its
    coarser levels from it exactly as ``register`` makes them from an image, so with the correction
    at zero (untrained) the warp is the classical solver's. The correction is *added* to the image
    channels, so training can also undo the image where it misleads (inverted contrast).

    Args (besides :class:`FeatureNetwork`'s ``dims`` and ``in_channels``; the features have the
    image's channels):
        widths: channels of the correction UNet's encoder stages, full resolution first (its depth
            is the context the correction sees: 4 stages reach 1/8).
        norm: ``instance``, ``group`` or ``none``.
    """

    def __init__(self, dims: int = 2, in_channels: int = 1, widths: Sequence[int] = (16, 32, 32, 64),
                 norm: str = "instance") -> None:
        super().__init__(dims, in_channels, in_channels, (1,))
        self.correction = UNet(dims, in_channels, in_channels, scales=(1,), widths=widths, norm=norm)
        output = self.correction.heads[-1]
        nn.init.zeros_(output.weight)
        nn.init.zeros_(output.bias)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """One level, ``[B, C_in, *S]``: the image plus its correction."""
        self.check_input(image)
        return [image + self.correction(image)[-1]]
