"""Separable filters on ``[B, C, *S]`` tensors: Gaussian smoothing and box (window) means."""

from __future__ import annotations

import functools
import math
from typing import Sequence

import torch

from .spatial import resize


@functools.lru_cache(maxsize=128)
def gaussian_weights(sigma: float) -> tuple[float, ...]:
    """Normalized 1D Gaussian of standard deviation ``sigma`` voxels, radius ``ceil(3 sigma)``, as
    Python floats: computed once per sigma, since the solver smooths with the same few sigmas every
    iteration (a tensor kernel read back with ``tolist`` took 6 small ops per call)."""
    radius = max(int(math.ceil(3.0 * sigma)), 1)
    values = [math.exp(-0.5 * (offset / sigma) ** 2) for offset in range(-radius, radius + 1)]
    total = math.fsum(values)
    return tuple(value / total for value in values)


def _conv_along(tensor: torch.Tensor, weights: Sequence[float], axis: int) -> torch.Tensor:
    """Convolve every channel of ``tensor`` along spatial ``axis`` with symmetric 1D ``weights``
    (replicate padding). A sum of shifted copies: on the CPU ~10x faster than ``conv1d``/``conv3d``
    for the short kernels the solver uses (benchmarks/README.md). The padding is never built: each
    shift adds the copy where it overlaps and the edge voxel where it would read the padding."""
    dim = 2 + axis
    size = tensor.shape[dim]
    if size < 2:
        return tensor
    radius = len(weights) // 2
    out = tensor * weights[radius]
    for shift in range(1, radius + 1):
        weight = weights[radius + shift]
        overlap, edge = max(size - shift, 0), min(shift, size)
        if overlap:
            out.narrow(dim, shift, overlap).add_(tensor.narrow(dim, 0, overlap), alpha=weight)
            out.narrow(dim, 0, overlap).add_(tensor.narrow(dim, shift, overlap), alpha=weight)
        out.narrow(dim, 0, edge).add_(tensor.narrow(dim, 0, 1), alpha=weight)
        out.narrow(dim, size - edge, edge).add_(tensor.narrow(dim, size - 1, 1), alpha=weight)
    return out


def gaussian_smooth(tensor: torch.Tensor, sigma: float | None) -> torch.Tensor:
    """Gaussian smoothing of ``[B, C, *S]`` with ``sigma`` in voxels (0 or None: unchanged)."""
    if not sigma or sigma <= 0:
        return tensor
    weights = gaussian_weights(float(sigma))
    for axis in range(tensor.dim() - 2):
        tensor = _conv_along(tensor, weights, axis)
    return tensor


def box_mean(tensor: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over a centred ``window``-voxel box for every voxel of ``[B, C, *S]`` (zero padding).

    Done with cumulative sums so the cost does not grow with the window; on the CPU this is
    several times faster than ``avg_pool3d`` or a depthwise convolution (benchmarks/README.md).
    Along each axis the box sum at ``i`` is ``C[min(i + after, n - 1)] - C[i - before - 1]`` of the
    cumulative sum ``C`` (0 before the start), written into slices rather than padding the input.
    """
    before = window // 2
    after = window - before - 1
    for axis in range(2, tensor.dim()):
        size = tensor.shape[axis]
        summed = tensor.cumsum(axis)
        tensor = torch.empty_like(summed)
        inside = max(size - after, 0)
        if inside:
            tensor.narrow(axis, 0, inside).copy_(summed.narrow(axis, after, inside))
        if size - inside:
            tensor.narrow(axis, inside, size - inside).copy_(summed.narrow(axis, size - 1, 1))
        if size - before - 1 > 0:
            tensor.narrow(axis, before + 1, size - before - 1).sub_(summed.narrow(axis, 0, size - before - 1))
    return tensor / window ** (tensor.dim() - 2)


def antialiased_resize(image: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Resize ``[B, C, *S]`` to ``shape``; when shrinking, Gaussian-smooth first (sigma half the factor)."""
    factor = max(n / max(int(m), 1) for n, m in zip(image.shape[2:], shape))
    if factor > 1:
        image = gaussian_smooth(image, 0.5 * factor)
    return resize(image, shape)
