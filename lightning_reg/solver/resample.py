"""A moving image put on the fixed image's grid, for a method that takes both images on one grid
(a fixed-grid network such as VoxelMorph's), and that resampling composed into the method's map, so
labels and Jacobians are taken through one transform from the moving image's own grid."""

from __future__ import annotations

from dataclasses import replace

import torch

from .geometry.spatial import apply_matrix, default_affines
from .result import RegistrationResult


def onto_fixed_grid(
    fixed: torch.Tensor,
    moving: torch.Tensor,
    fixed_affine: torch.Tensor | None = None,
    moving_affine: torch.Tensor | None = None,
) -> tuple[RegistrationResult | None, torch.Tensor]:
    """``(header map, moving image on the fixed grid)``: the world-coordinate map from the fixed grid
    to the moving grid (affines ``[B, d+1, d+1]``, mm) and ``moving`` ``[B, C, *S_moving]`` resampled
    through it onto ``fixed``'s grid (linear, border); ``(None, moving)`` when both share one grid."""
    if moving.shape == fixed.shape and (
        fixed_affine is None or moving_affine is None or torch.equal(fixed_affine, moving_affine)
    ):
        return None, moving
    default_fixed, default_moving = default_affines(fixed.shape[2:], moving.shape[2:], len(fixed), fixed.device)
    fixed_affine = default_fixed if fixed_affine is None else fixed_affine
    moving_affine = default_moving if moving_affine is None else moving_affine
    header = RegistrationResult.from_headers(fixed.shape[2:], moving.shape[2:], fixed_affine, moving_affine)
    return header, header.warp(moving, padding_mode="border")


def through_header(header: RegistrationResult | None, predicted: RegistrationResult) -> RegistrationResult:
    """``predicted`` (a map of the fixed grid onto the resampled moving image) followed by ``header``
    back to the moving image's own grid; ``predicted`` itself when there is no header map."""
    if header is None:
        return predicted
    # the header map is affine (header.grid is header.matrix applied to the identity): applied exactly,
    # also to predicted points outside the fixed grid, which sampling its grid would clamp
    return replace(header, grid=apply_matrix(header.matrix, predicted.grid), transform=None)
