"""Any MONAI network with one full-resolution output as the feature network.

Written here (a thin adapter) because MONAI's networks return one feature map at the input's size,
while the solver takes a pyramid: the map is area-averaged to each scale, with a 1x1 convolution
where a level asks for another channel count. The network is named (a class of
``monai.networks.nets``), not given as a class path, so a checkpoint that names it imports nothing
else (``training/checkpoints.py``).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import FeatureNetwork
from .layers import area_pool


def monai_network(name: str) -> type[nn.Module]:
    """The class ``name`` of ``monai.networks.nets``; a clear error without MONAI or for another name."""
    try:
        from monai.networks import nets
    except ImportError:
        raise ImportError("MonaiFeatures needs MONAI: pip install 'lightning_reg[monai]'") from None
    network = getattr(nets, name, None)
    if not (isinstance(network, type) and issubclass(network, nn.Module)):
        raise ValueError(
            f"{name!r} is not a network of monai.networks.nets (e.g. BasicUNet, UNet, AttentionUnet, SegResNet)"
        )
    return network


class MonaiFeatures(FeatureNetwork):
    """A MONAI network (``monai.networks.nets.<network>``) made into a feature pyramid.

    Args:
        dims: 2 or 3; the MONAI network gets ``spatial_dims=dims``.
        in_channels: image channels (the MONAI network's ``in_channels``).
        out_channels: feature channels per scale (the MONAI network gets the largest).
        scales: downsampling factor of each pyramid level, coarse to fine.
        network: the class name in ``monai.networks.nets`` (``BasicUNet``, ``UNet``, ...).
        network_options: its other arguments (``features`` of BasicUNet; ``channels`` and ``strides``
            of UNet, ...).
        size_multiple: the input is padded (edge values) to a multiple of this many voxels per axis
            and the output cropped back, for networks that need sizes divisible by their strides
            (16 for four halvings).
    """

    def __init__(
        self,
        dims: int = 2,
        in_channels: int = 1,
        out_channels: int | Sequence[int] = 16,
        scales: Sequence[int] = (4, 2, 1),
        network: str = "BasicUNet",
        network_options: dict | None = None,
        size_multiple: int = 16,
    ) -> None:
        super().__init__(dims, in_channels, out_channels, scales)
        if size_multiple < 1:
            raise ValueError(f"size_multiple must be >= 1, got {size_multiple}")
        self.size_multiple = int(size_multiple)
        self.network_name = network
        width = max(self.out_channels)
        try:
            self.body = monai_network(network)(
                spatial_dims=dims, in_channels=in_channels, out_channels=width, **dict(network_options or {})
            )
        except TypeError as error:
            raise ValueError(f"MONAI's {network} does not take these options: {error}") from None
        conv = nn.Conv2d if dims == 2 else nn.Conv3d
        self.heads = nn.ModuleList(
            [nn.Identity() if channels == width else conv(width, channels, 1) for channels in self.out_channels]
        )

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        """Pyramid coarse to fine: ``[B, out_channels[k], *ceil(S / scales[k])]``."""
        self.check_input(image)
        shape = image.shape[2:]
        padding = [math.ceil(n / self.size_multiple) * self.size_multiple - n for n in shape]
        padded = (
            F.pad(image, [p for amount in reversed(padding) for p in (0, amount)], mode="replicate")
            if any(padding)
            else image
        )
        features = self.body(padded)
        if isinstance(features, (list, tuple)):  # deep supervision: the first output is the full-resolution one
            features = features[0]
        if not isinstance(features, torch.Tensor) or features.shape[2:] != padded.shape[2:]:
            got = tuple(features.shape) if isinstance(features, torch.Tensor) else type(features).__name__
            raise ValueError(
                f"MONAI's {self.network_name} returned {got} for an input of {tuple(padded.shape)}: "
                f"MonaiFeatures needs a network with one output at the input's size"
            )
        features = features[(slice(None), slice(None)) + tuple(slice(0, n) for n in shape)]
        return [
            head(features if scale == 1 else area_pool(features, level_shape))
            for head, scale, level_shape in zip(self.heads, self.scales, self.output_shapes(shape))
        ]
