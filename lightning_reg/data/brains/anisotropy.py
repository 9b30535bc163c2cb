"""Clinical thick slices, stored as such: every ``factor`` slices of one axis averaged into one, the
header's voxel size along that axis ``factor`` times larger (a 2 mm grid becomes 2x2x6 mm). The test
of the method's claim that features computed on the native grid, with the solver in world
coordinates, need no resampling; and the training augmentation that teaches the features so."""

from __future__ import annotations

import torch


def thicken(
    image: torch.Tensor, labels: torch.Tensor, affine: torch.Tensor, axis: int, factor: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``image`` ``[C, *S]`` averaged over groups of ``factor`` slices along spatial ``axis`` (a
    remainder dropped), ``labels`` ``[1, *S]`` the middle slice of each group, and the voxel-to-world
    ``affine`` ``[d+1, d+1]`` of the thick grid (first slab centred where its slices were)."""
    dim = axis + 1
    length = image.shape[dim] // factor * factor
    if length == 0:
        raise ValueError(f"axis {axis} has {image.shape[dim]} slices, fewer than the factor {factor}")
    kept = image.narrow(dim, 0, length)
    shape = list(kept.shape)
    shape[dim : dim + 1] = [length // factor, factor]
    thick = kept.reshape(shape).mean(dim + 1)
    middle = labels.index_select(dim, torch.arange(factor // 2, length, factor))
    affine = affine.clone()
    affine[:-1, -1] += affine[:-1, axis] * (factor - 1) / 2
    affine[:-1, axis] *= factor
    return thick, middle, affine
