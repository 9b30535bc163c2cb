"""Clinical thick slices, stored as such: slabs ``factor`` slices thick along one axis, each the mean
of the thin slices it covers (a fractional factor weighs the slices it cuts by their covered part),
the header's voxel size along that axis ``factor`` times larger (a 2 mm grid with factor 2.5 becomes
2x2x5 mm). The test of the method's claim that features computed on the native grid, with the solver
in world coordinates, need no resampling; and the training augmentation that teaches the features so."""

from __future__ import annotations

import math

import torch

#: the range of clinical slice thicknesses the training augmentation draws from (mm)
SLAB_MM = (3.0, 7.0)


def slab_weights(slices: int, factor: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``[M, slices]``: row ``k`` averages the thin slices ``[k * factor, (k + 1) * factor)`` cover,
    each weighed by the part of it the slab covers; ``M = floor(slices / factor)`` whole slabs."""
    count = math.floor(slices / factor + 1e-9)
    starts = torch.arange(count, dtype=torch.float64)[:, None] * factor
    edges = torch.arange(slices, dtype=torch.float64)[None]
    covered = (torch.minimum(starts + factor, edges + 1) - torch.maximum(starts, edges)).clamp_min(0)
    return (covered / factor).to(dtype)


def thicken(
    image: torch.Tensor, labels: torch.Tensor, affine: torch.Tensor, axis: int, factor: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``image`` ``[C, *S]`` averaged over slabs of ``factor`` (>= 1, any real number) slices along
    spatial ``axis`` (a remainder dropped), ``labels`` ``[L, *S]`` the thin slice at each slab's
    centre, and the voxel-to-world ``affine`` ``[d+1, d+1]`` of the thick grid (each slab's voxel
    centred on its slab)."""
    if not factor >= 1:
        raise ValueError(f"the slab factor must be >= 1 slice, got {factor}")
    dim = axis + 1
    weights = slab_weights(image.shape[dim], factor, image.dtype)
    if weights.shape[0] == 0:
        raise ValueError(f"axis {axis} has {image.shape[dim]} slices, fewer than the factor {factor}")
    thick = torch.tensordot(image.movedim(dim, -1), weights, dims=([-1], [1])).movedim(-1, dim)
    centres = ((torch.arange(weights.shape[0], dtype=torch.float64) + 0.5) * factor).floor().long()
    middle = labels.index_select(dim, centres.clamp_max(labels.shape[dim] - 1))
    affine = affine.clone()
    affine[:-1, -1] += affine[:-1, axis] * (factor - 1) / 2
    affine[:-1, axis] *= factor
    return thick, middle, affine
