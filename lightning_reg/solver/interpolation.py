"""Linear interpolation written with gather, differentiable to any order, and the check that picks it.

The implicit layer differentiates the solver's gradient (double backward through sampling).
``grid_sample`` supports that on the CPU build; where a device's build does not, ``spatial.sample``
falls back to :func:`linear_sample`, which is built from indexing and arithmetic only.
"""
from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

_TWICE_DIFFERENTIABLE: dict[str, bool] = {}


def linear_sample(image: torch.Tensor, grid: torch.Tensor, padding_mode: str = "border") -> torch.Tensor:
    """Bilinear/trilinear ``grid_sample`` (``align_corners=True``) of ``image [B, C, *S_in]`` at
    ``grid [B, *S_out, d]``; ``padding_mode`` ``border`` or ``zeros``. Returns ``[B, C, *S_out]``."""
    batch, channels, *sizes = image.shape
    dims = len(sizes)
    out_shape = grid.shape[1:-1]
    points = grid.reshape(batch, -1, dims).flip(-1)  # array axis order
    extent = torch.tensor([n - 1 for n in sizes], dtype=grid.dtype, device=grid.device)
    position = (points + 1) / 2 * extent  # grid_sample's own arithmetic, so cells match at voxel centres
    if padding_mode == "border":  # clamped, no gradient on or beyond the edge (as grid_sample)
        inside = (position > 0) & (position < extent)
        position = torch.where(inside, position, torch.minimum(position.detach().clamp_min(0), extent))
    lower = position.detach().floor()
    fraction = position - lower
    lower = lower.long()
    flat = image.reshape(batch, channels, -1)
    strides = [int(torch.tensor(sizes[axis + 1:]).prod()) for axis in range(dims)]
    result = 0
    for corner in itertools.product((0, 1), repeat=dims):
        index = torch.zeros_like(lower[..., 0])
        weight = torch.ones_like(fraction[..., 0])
        inside = torch.ones_like(weight, dtype=torch.bool)
        for axis, offset in enumerate(corner):
            coordinate = lower[..., axis] + offset
            inside = inside & (coordinate >= 0) & (coordinate < sizes[axis])
            index = index + coordinate.clamp(0, sizes[axis] - 1) * strides[axis]
            weight = weight * (fraction[..., axis] if offset else 1 - fraction[..., axis])
        if padding_mode == "zeros":
            weight = weight * inside
        values = flat.gather(2, index.unsqueeze(1).expand(-1, channels, -1))
        result = result + values * weight.unsqueeze(1)
    return result.reshape(batch, channels, *out_shape)


def grid_sample_twice_differentiable(device: torch.device) -> bool:
    """Whether ``grid_sample``'s double backward works on ``device`` (checked once, cached)."""
    key = torch.device(device).type
    if key not in _TWICE_DIFFERENTIABLE:
        with torch.inference_mode(False), torch.enable_grad():  # the first call may come from evaluation
            _TWICE_DIFFERENTIABLE[key] = _check_double_backward(device)
    return _TWICE_DIFFERENTIABLE[key]


def _check_double_backward(device: torch.device) -> bool:
    image = torch.randn(1, 1, 4, 5, dtype=torch.float64, device=device, requires_grad=True)
    grid = (torch.rand(1, 3, 2, 2, dtype=torch.float64, device=device) * 1.6 - 0.8).requires_grad_()

    def sampled(image, grid):
        return F.grid_sample(image, grid, padding_mode="border", align_corners=True)

    try:
        return bool(torch.autograd.gradgradcheck(sampled, (image, grid), raise_exception=False))
    except (RuntimeError, NotImplementedError):
        return False
