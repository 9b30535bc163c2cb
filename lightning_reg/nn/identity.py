"""The identity "network": the image itself is the only feature, so the layer runs the classical solver."""

from __future__ import annotations

from typing import Sequence

import torch

from .base import FeatureNetwork
from .layers import area_pool


class IdentityFeatures(FeatureNetwork):
    """Returns the image, area-averaged to each scale (no parameters): the classical baseline."""

    def __init__(self, dims: int = 2, in_channels: int = 1, scales: Sequence[int] = (4, 2, 1)) -> None:
        super().__init__(dims, in_channels, in_channels, scales)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Pyramid coarse to fine: ``[B, C_in, *ceil(S / s)]`` per scale ``s``."""
        self.check_input(image)
        return [
            image if s == 1 else area_pool(image, shape)
            for s, shape in zip(self.scales, self.output_shapes(image.shape[2:]))
        ]
