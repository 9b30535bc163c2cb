"""Pre-training the learned channels of ``AddedFeatures`` without the solver: each voxel's channels
regress a fixed code of its structure class (``data/brains/structures.py``), so that fixed and moving
images of any contrast get the same channels where they show the same structure. Measured before any
solve (issue 41): channels that know the anatomy better than the image shows, added to the image, are
where the headroom is; a solve needs none of this to train them, so this stage costs a network's step."""

from __future__ import annotations

from functools import lru_cache

import torch

from ..data.brains.structures import STRUCTURE_CLASSES
from ..nn import AddedFeatures
from ..nn.layers import area_pool


@lru_cache(maxsize=8)
def structure_codes(channels: int, classes: int = STRUCTURE_CLASSES, seed: int = 0) -> torch.Tensor:
    """``[classes, channels]`` fixed random unit codes (the same in every run), the background's zero."""
    codes = torch.randn(classes, channels, generator=torch.Generator().manual_seed(seed))
    codes = codes / codes.norm(dim=1, keepdim=True)
    codes[0] = 0
    return codes


def structure_code_loss(network: AddedFeatures, image: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
    """Mean squared error between the learned channels of every level and the codes of ``classes``
    ``[B, 1, *S]`` (area-averaged to each level); images with a voxel of a class < 0 (random shapes,
    no structures) left out."""
    codes = structure_codes(network.learned).to(image)
    target = codes[classes[:, 0].clamp_min(0)].movedim(-1, 1)
    keep = (classes >= 0).flatten(1).all(1).to(image.dtype)
    losses = []
    for learned in network.unet(image):
        wanted = target if learned.shape == target.shape else area_pool(target, learned.shape[2:])
        per_image = (learned - wanted).square().flatten(1).mean(1)
        losses.append((per_image * keep).sum() / keep.sum().clamp_min(1))
    return torch.stack(losses).mean()
