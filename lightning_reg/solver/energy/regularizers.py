"""Explicit smoothness penalties on a displacement field ``[B, d, *S]`` in voxel units; ``[B]`` out."""

from __future__ import annotations

import torch

from ..checks import check_number
from ..geometry.spatial import gradient_voxels


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


def get_regularizer(name: str | None, weight: float = 0.0):
    """The penalty called ``name`` (``diffusion``, ``bending``), or None for ``None``;
    ``weight`` must be finite and >= 0, and > 0 when a penalty is named (else it would do nothing)."""
    weight = check_number("regularizer_weight", weight, 0)
    if name is None:
        return None
    if name not in REGULARIZERS:
        raise ValueError(f"unknown regularizer {name!r}; choose one of {', '.join(REGULARIZERS)} (or None)")
    if weight == 0:
        raise ValueError(
            f"regularizer {name!r} has weight 0, so it would change nothing: give its weight "
            f"(regularizer_weight, e.g. 0.1), or no regularizer"
        )
    return REGULARIZERS[name]
