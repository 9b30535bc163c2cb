"""Pre-training the learned channels of ``AddedFeatures`` without the solver: each voxel's channels
regress a fixed code of its structure class (``data/brains/structures.py``), so that fixed and moving
images of any contrast get the same channels where they show the same structure. Measured before any
solve (issue 41): channels that know the anatomy better than the image shows, added to the image, are
where the headroom is; a solve needs none of this to train them, so this stage costs a network's step."""

from __future__ import annotations

from functools import lru_cache

import torch

from ..data.brains.structures import STRUCTURE_CLASSES
from ..nn import AddedFeatures, FeatureNetwork
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


def pretraining_loss(network: FeatureNetwork, batch: dict) -> torch.Tensor:
    """:func:`structure_code_loss` averaged over both images of ``batch`` (its ``fixed``/``moving`` and
    ``fixed_structures``/``moving_structures``); a clear error for another network or data without
    structures."""
    if not isinstance(network, AddedFeatures):
        raise ValueError(
            f"pretrain_steps trains AddedFeatures' learned channels; the network is {type(network).__name__}"
        )
    if "fixed_structures" not in batch or "moving_structures" not in batch:
        raise ValueError(
            "pretrain_steps needs each voxel's structure class (fixed_structures, moving_structures), which "
            "lightning_reg.data.BrainDataModule gives; use it, or set --model.pretrain_steps 0"
        )
    sides = ("fixed", "moving")
    fixed, moving = (structure_code_loss(network, batch[side], batch[f"{side}_structures"]) for side in sides)
    return (fixed + moving) / 2
