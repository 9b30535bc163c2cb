"""Separable filters on ``[B, C, *S]`` tensors: Gaussian smoothing and box (window) means."""
from __future__ import annotations

import functools
import math
from typing import Sequence

import torch
import torch.nn.functional as F

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
    for the short kernels the solver uses (benchmarks/README.md)."""
    size = tensor.shape[2 + axis]
    if size < 2:
        return tensor
    radius = len(weights) // 2
    pad = [0, 0] * (tensor.dim() - 2)
    position = 2 * (tensor.dim() - 3 - axis)
    pad[position] = pad[position + 1] = radius
    padded = F.pad(tensor, pad, mode="replicate")
    out = padded.narrow(2 + axis, 0, size) * weights[0]
    for offset in range(1, len(weights)):
        out.add_(padded.narrow(2 + axis, offset, size), alpha=weights[offset])
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
    """
    half = window // 2
    for axis in range(2, tensor.dim()):
        size = tensor.shape[axis]
        pad = [0, 0] * (tensor.dim() - 2)
        position = 2 * (tensor.dim() - 1 - axis)
        pad[position], pad[position + 1] = half + 1, window - half - 1
        summed = F.pad(tensor, pad).cumsum(axis)
        tensor = (summed.narrow(axis, window, size) - summed.narrow(axis, 0, size)) / window
    return tensor


def antialiased_resize(image: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
    """Resize ``[B, C, *S]`` to ``shape``; when shrinking, Gaussian-smooth first (sigma half the factor)."""
    factor = max(n / max(int(m), 1) for n, m in zip(image.shape[2:], shape))
    if factor > 1:
        image = gaussian_smooth(image, 0.5 * factor)
    return resize(image, shape)
