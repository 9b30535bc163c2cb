"""Grids, sampling, coordinate frames, field resizing/composition and Jacobians.

Conventions (see DESIGN.md):
- Images are ``[B, C, *S]`` with ``S`` in array order (``(H, W)`` or ``(D, H, W)``).
- A *grid* is ``[B, *S, d]`` in ``grid_sample`` normalized coordinates (``align_corners=True``);
  its last axis is in ``grid_sample`` order, i.e. the reverse of the array axes.
- A *field* (displacement) is channel-first ``[B, d, *S]`` with components in the same
  ``grid_sample`` order, so ``grid = identity + field.movedim(1, -1)``.
- Voxel and millimetre vectors at the edges of the system are in array order.
"""

from __future__ import annotations

import functools
from typing import Sequence

import torch
import torch.nn.functional as F

from .interpolation import grid_sample_twice_differentiable, linear_sample, tap_sample


def spatial_dims(tensor: torch.Tensor) -> int:
    """Number of spatial dimensions of a ``[B, C, *S]`` tensor."""
    return tensor.dim() - 2


def identity_grid(shape: Sequence[int], device=None, dtype=torch.float32) -> torch.Tensor:
    """Identity sampling grid ``[1, *shape, d]`` in normalized coordinates.

    One tensor per shape, device and dtype, made once (the solver asks for it every iteration):
    never write into it.
    """
    return _identity_grid(tuple(int(n) for n in shape), torch.device(device or "cpu"), dtype)


@functools.lru_cache(maxsize=64)
def _identity_grid(shape: tuple[int, ...], device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    with torch.inference_mode(False), torch.no_grad():  # a normal tensor, usable inside and outside autograd
        axes = [torch.linspace(-1.0, 1.0, n, device=device, dtype=dtype) for n in shape]
        mesh = torch.meshgrid(*axes, indexing="ij")
        return torch.stack(mesh[::-1], dim=-1).unsqueeze(0)


def field_to_grid(field: torch.Tensor) -> torch.Tensor:
    """Channel-first field ``[B, d, *S]`` to channel-last ``[B, *S, d]``."""
    return field.movedim(1, -1)


def grid_to_field(grid: torch.Tensor) -> torch.Tensor:
    """Channel-last ``[B, *S, d]`` to channel-first ``[B, d, *S]``."""
    return grid.movedim(-1, 1)


def sample(
    image: torch.Tensor, grid: torch.Tensor, mode: str = "bilinear", padding_mode: str = "border"
) -> torch.Tensor:
    """Sample ``image [B, C, *S_in]`` at ``grid [B, *S_out, d]``; returns ``[B, C, *S_out]``.

    ``mode`` is ``bilinear`` (linear in 2D and 3D), ``nearest`` or ``cubic`` (the cubic B-spline,
    twice differentiable in the coordinates; :func:`interpolation.tap_sample`). Linear sampling
    uses ``grid_sample`` where its double backward works, else :func:`interpolation.linear_sample`.
    """
    if image.shape[0] != grid.shape[0]:
        if image.shape[0] == 1:
            image = image.expand(grid.shape[0], *image.shape[1:])
        elif grid.shape[0] == 1:
            grid = grid.expand(image.shape[0], *grid.shape[1:])
    grid = bounded_grid(grid.to(image.dtype))
    if mode == "cubic":
        return tap_sample(image, grid, padding_mode, "cubic")
    if (
        mode == "bilinear"
        and padding_mode in ("border", "zeros")
        and not grid_sample_twice_differentiable(image.device)
    ):
        return linear_sample(image, grid, padding_mode)
    return F.grid_sample(image, grid, mode=mode, padding_mode=padding_mode, align_corners=True)


#: sampling coordinates are clamped to this many normalized units: everything beyond +-(1 + 2 voxels)
#: samples the padding, so +-2 changes no value and no gradient for images of 3 voxels or more an axis
GRID_BOUND = 2.0


def bounded_grid(grid: torch.Tensor) -> torch.Tensor:
    """``grid`` with every coordinate finite and within ``+-GRID_BOUND``. ``grid_sample`` turns huge
    or NaN coordinates into out-of-range memory indices and can crash the process (its border
    backward segfaults on them). NaN becomes 0 here: callers that must not hide a diverged warp add
    :func:`nan_marker`."""
    return torch.nan_to_num(grid, nan=0.0).clamp(-GRID_BOUND, GRID_BOUND)


def nan_marker(values: torch.Tensor) -> torch.Tensor:
    """``[B]``: 0 for a pair whose ``values [B, ...]`` (grid, parameters) are finite, NaN where they
    are not; added to a value of the pair so that :func:`sample`'s clean-up cannot hide a divergence."""
    return values.detach().sum(dim=tuple(range(1, values.dim()))) * 0.0


def apply_matrix(matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply homogeneous ``matrix [B, d+1, d+1]`` to points ``[B or 1, *S, d]``."""
    dims = points.shape[-1]
    batch = max(matrix.shape[0], points.shape[0])
    flat = points.reshape(points.shape[0], -1, dims).expand(batch, -1, -1)
    matrix = matrix.to(points.dtype).expand(batch, -1, -1)
    out = torch.baddbmm(matrix[:, :dims, dims].unsqueeze(1), flat, matrix[:, :dims, :dims].transpose(1, 2))
    return out.reshape(batch, *points.shape[1:-1], dims)


def voxel_to_normalized(shape: Sequence[int], device=None, dtype=torch.float64) -> torch.Tensor:
    """Homogeneous matrix ``[d+1, d+1]``: array-order voxel index -> ``grid_sample`` coordinates."""
    dims = len(shape)
    matrix = torch.zeros(dims + 1, dims + 1, device=device, dtype=dtype)
    for axis, size in enumerate(shape):
        row = dims - 1 - axis
        matrix[row, axis] = 2.0 / max(int(size) - 1, 1)
        matrix[row, dims] = -1.0
    matrix[dims, dims] = 1.0
    return matrix


def normalized_to_voxel(shape: Sequence[int], device=None, dtype=torch.float64) -> torch.Tensor:
    """Inverse of :func:`voxel_to_normalized`."""
    return torch.linalg.inv(voxel_to_normalized(shape, device, dtype))


def voxel_size_normalized(shape: Sequence[int], device=None) -> torch.Tensor:
    """Size of one voxel in normalized units per field component (``grid_sample`` order) ``[d]``."""
    sizes = [2.0 / max(int(n) - 1, 1) for n in shape][::-1]
    return torch.tensor(sizes, device=device, dtype=torch.float32)


def default_affines(
    fixed_shape: Sequence[int], moving_shape: Sequence[int], batch: int, device=None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Voxel-to-world affines used when none are given.

    The fixed image gets the identity (1 mm voxels); the moving image is scaled so that both
    fields of view coincide, i.e. the identity in normalized coordinates.
    """
    dims = len(fixed_shape)
    fixed = torch.eye(dims + 1, dtype=torch.float64, device=device)
    moving = torch.eye(dims + 1, dtype=torch.float64, device=device)
    for axis in range(dims):
        moving[axis, axis] = max(fixed_shape[axis] - 1, 1) / max(moving_shape[axis] - 1, 1)
    return fixed.expand(batch, -1, -1), moving.expand(batch, -1, -1)


def batch_affine(affine: torch.Tensor | None, batch: int, dims: int) -> torch.Tensor | None:
    """Validate a voxel-to-world affine and broadcast it to ``[B, d+1, d+1]`` float64."""
    if affine is None:
        return None
    affine = torch.as_tensor(affine, dtype=torch.float64)
    if affine.dim() == 2:
        affine = affine.unsqueeze(0)
    if affine.shape[-2:] != (dims + 1, dims + 1):
        raise ValueError(f"an affine for {dims}D images must be {dims + 1}x{dims + 1}, got {tuple(affine.shape[-2:])}")
    if affine.shape[0] not in (1, batch):
        raise ValueError(f"affine batch size {affine.shape[0]} does not match image batch {batch}")
    return affine.expand(batch, -1, -1)


def gradient_voxels(field: torch.Tensor) -> torch.Tensor:
    """Central-difference spatial derivatives of ``[B, C, *S]``: ``[B, C, d, *S]`` (array order)."""
    dims = spatial_dims(field)
    derivs = []
    for axis in range(dims):
        if field.shape[2 + axis] < 2:
            derivs.append(torch.zeros_like(field))
        else:
            derivs.append(torch.gradient(field, dim=2 + axis)[0])
    return torch.stack(derivs, dim=2)


def resize(image: torch.Tensor, shape: Sequence[int], mode: str = "linear") -> torch.Tensor:
    """Resize ``[B, C, *S]`` to ``shape`` (``align_corners=True``, so normalized fields keep meaning)."""
    if tuple(image.shape[2:]) == tuple(shape):
        return image
    if mode == "nearest":
        return F.interpolate(image, size=tuple(shape), mode="nearest")
    interp = "bilinear" if len(shape) == 2 else "trilinear"
    # channel by channel: PyTorch's 2D kernel rounds differently with the channel count, and the
    # image's channel must come out as it does alone (nn.AddedFeatures: untrained == classical, exactly)
    planes = image.reshape(-1, 1, *image.shape[2:])
    resized = F.interpolate(planes, size=tuple(shape), mode=interp, align_corners=True)
    return resized.view(*image.shape[:2], *shape)


def compose(outer: torch.Tensor, inner: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """Displacement of ``(Id + outer) o (Id + inner)``: ``inner + outer o (Id + inner)``.

    Both fields ``[B, d, *S]`` in normalized units on the same grid; ``mode`` of :func:`sample`.
    """
    grid = identity_grid(inner.shape[2:], inner.device, inner.dtype) + field_to_grid(inner)
    return inner + sample(outer, grid, mode=mode, padding_mode="border")


def voxel_spacing(affine: torch.Tensor) -> torch.Tensor:
    """Voxel sizes ``[..., d]`` (mm) of voxel-to-world affines ``[..., d+1, d+1]``: their columns' lengths."""
    dims = affine.shape[-1] - 1
    return affine[..., :dims, :dims].norm(dim=-2)


def exponentiate(velocity: torch.Tensor, steps: int = 7, mode: str = "bilinear") -> torch.Tensor:
    """Displacement ``[B, d, *S]`` of ``exp(velocity)`` by scaling and squaring (a diffeomorphism);
    same units as ``velocity`` (normalized, ``grid_sample`` component order); ``mode`` of :func:`sample`."""
    displacement = velocity / 2**steps
    for _ in range(steps):
        displacement = compose(displacement, displacement, mode)
    return displacement


def rescaled_affine(affine: torch.Tensor, from_shape: Sequence[int], to_shape: Sequence[int]) -> torch.Tensor:
    """Voxel-to-world affine ``[..., d+1, d+1]`` of a grid of ``to_shape`` spanning the same field of
    view as ``from_shape`` (corner voxel centres kept, as with ``align_corners=True``)."""
    steps = [max(int(a) - 1, 1) / max(int(b) - 1, 1) for a, b in zip(from_shape, to_shape)]
    scaling = torch.diag(torch.tensor(steps + [1.0], dtype=affine.dtype, device=affine.device))
    return affine @ scaling
