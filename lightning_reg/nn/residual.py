"""Features that start as the classical solver: fixed base features (the image, or its MIND-SSC
descriptors) plus a learned correction whose output convolution starts at zero (DIO's lung model adds
its input back at each scale and zero-initialises its output convolutions), so an untrained model
registers exactly as the classical solver with the same settings (on the image, or on its MIND-SSC),
and training can only move away from it where the loss says so."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .base import FeatureNetwork
from .mind import mind_pairs, mind_ssc
from .unet import UNet

#: the base features on offer: the image itself, or its MIND-SSC descriptors (``mind.py``)
BASES = ("image", "mind")


class ResidualFeatures(FeatureNetwork):
    """``base(image) + correction(image)`` at full resolution, one level (scale 1): the solver makes
    its coarser levels from it exactly as ``register`` makes them from an image, so with the
    correction at zero (untrained) and ``base="image"`` the warp is the classical solver's. The
    correction is *added* to the base channels, so training can also undo the base where it misleads
    (inverted contrast).

    Args (besides :class:`FeatureNetwork`'s ``dims`` and ``in_channels``):
        base: ``image`` (the features are the image's channels) or ``mind`` (its MIND-SSC
            descriptors, weight-free and insensitive to contrast: 4 channels per image channel in
            2D, 12 in 3D; ``mind_radius``, ``mind_dilation`` in voxels).
        widths: channels of the correction UNet's encoder stages, full resolution first (its depth
            is the context the correction sees: 4 stages reach 1/8).
        norm: ``instance``, ``group`` or ``none``.
    """

    def __init__(
        self,
        dims: int = 2,
        in_channels: int = 1,
        base: str = "image",
        widths: Sequence[int] = (16, 32, 32, 64),
        norm: str = "instance",
        mind_radius: int = 2,
        mind_dilation: int = 2,
    ) -> None:
        if base not in BASES:
            raise ValueError(f"unknown base {base!r}; choose one of {', '.join(BASES)}")
        channels = in_channels if base == "image" else in_channels * mind_pairs(dims)
        super().__init__(dims, in_channels, channels, (1,))
        self.base, self.mind_radius, self.mind_dilation = base, int(mind_radius), int(mind_dilation)
        self.correction = UNet(dims, in_channels, channels, scales=(1,), widths=widths, norm=norm)
        output = self.correction.heads[-1]
        assert isinstance(output, (nn.Conv2d, nn.Conv3d)) and output.bias is not None  # UNet's heads are convolutions
        nn.init.zeros_(output.weight)
        nn.init.zeros_(output.bias)

    def base_features(self, image: torch.Tensor) -> torch.Tensor:
        """The fixed part of the features, ``[B, C_out, *S]``."""
        return image if self.base == "image" else mind_ssc(image, self.mind_radius, self.mind_dilation)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """One level, ``[B, C_out, *S]``: the base plus its correction."""
        self.check_input(image)
        return [self.base_features(image) + self.correction(image)[-1]]
