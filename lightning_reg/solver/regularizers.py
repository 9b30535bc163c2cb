"""Explicit smoothness penalties on a displacement field ``[B, d, *S]`` in voxel units; ``[B]`` out."""
from __future__ import annotations

import torch

from .spatial import gradient_voxels


def diffusion(displacement: torch.Tensor) -> torch.Tensor:
    """Mean squared first derivative (membrane / diffusion energy) per pair."""
    return gradient_voxels(displacement).pow(2).flatten(1).mean(1)


def bending(displacement: torch.Tensor) -> torch.Tensor:
    """Mean squared second derivative (thin-plate bending energy) per pair."""
    first = gradient_voxels(displacement)
    batch, channels, dims = first.shape[:3]
    second = gradient_voxels(first.reshape(batch, channels * dims, *first.shape[3:]))
    return second.pow(2).flatten(1).mean(1)


REGULARIZERS = {"diffusion": diffusion, "bending": bending}


def get_regularizer(name: str | None):
    """The penalty called ``name`` (``diffusion``, ``bending``), or None for ``None``/``"none"``."""
    if name in (None, "none"):
        return None
    if name not in REGULARIZERS:
        raise ValueError(f"unknown regularizer {name!r}; choose one of none, {', '.join(REGULARIZERS)}")
    return REGULARIZERS[name]
