"""The solver's pyramid: its levels at the chosen scales, from an image or from a network's levels."""

from __future__ import annotations

from typing import Sequence

import torch

from .filters import antialiased_resize

#: a level keeps at least this many voxels along every axis (or the image's own size, if smaller)
MIN_SIZE = 4


def scale_shape(shape: Sequence[int], factor: float) -> tuple[int, ...]:
    """Spatial shape of the level downsampled by ``factor`` (at least ``MIN_SIZE`` voxels an axis)."""
    return tuple(max(int(round(n / factor)), min(MIN_SIZE, n)) for n in shape)


def downsample(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Gaussian anti-aliasing (sigma ``factor / 2`` voxels) then linear resize by ``1 / factor``."""
    if factor <= 1:
        return image
    return antialiased_resize(image, scale_shape(image.shape[2:], factor))


def source_levels(scales: Sequence[float], level_scales: Sequence[float]) -> list[int]:
    """For each solver scale, the index of the given level it is made from: the finest level at
    least as coarse as the scale (``level_scales``: the downsampling factor of each given level)."""
    sources = []
    for scale in scales:
        usable = [index for index, own in enumerate(level_scales) if own <= scale]
        if not usable:
            raise ValueError(
                f"scales {list(scales)}: each must be >= the finest level's scale {min(level_scales)} "
                f"(the levels given are at scales {list(level_scales)})"
            )
        sources.append(min(usable, key=lambda index: scale - level_scales[index]))
    return sources


def solver_levels(
    levels: Sequence[torch.Tensor], level_scales: Sequence[float], scales: Sequence[float]
) -> list[torch.Tensor]:
    """The solver's levels at ``scales`` from ``levels`` at ``level_scales``: each from its source
    level (:func:`source_levels`), smoothed down further where the source is finer."""
    return [
        downsample(levels[index], scale / level_scales[index])
        for scale, index in zip(scales, source_levels(scales, level_scales))
    ]
