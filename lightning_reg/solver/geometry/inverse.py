"""Inverse transforms: the map from the moving image's grid back to the fixed image, for every
representation, and how far forward-then-inverse lands from where it started.

A result's map is ``x -> M (x + u(x))`` in normalized coordinates: ``M`` its linear part
(``RegistrationResult.matrix``, fixed normalized -> moving normalized), ``u`` its dense part on the
fixed grid (zero for linear transforms). The inverse is ``z -> y + v(y)``, ``y = M^-1 z``, with ``v``
the inverse displacement on the fixed grid (``y + v(y)`` undoes ``x + u(x)``):

- linear: ``v = 0``, exact;
- svf: ``v = exp(-velocity) - Id``, exact up to scaling and squaring;
- syn: ``psi_f o psi_m^-1`` from the two halves of the same solve (each half inverted as below: a
  half-size field, so the inversion converges quickly); its residual is the larger of the halves';
- greedy, freeform, bspline, or a field from elsewhere: the fixed point of ``v(y) = -u(y + v(y))``
  (``inversion.py``), with its residual.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .invert_field import INVERSE_ITERATIONS, INVERSE_TOLERANCE, invert_displacement
from .spatial import (
    apply_matrix,
    compose,
    exponentiate,
    field_to_grid,
    grid_to_field,
    identity_grid,
    normalized_to_voxel,
    sample,
)
from .transforms import SVF, SyN, Transform

#: an inverse whose largest residual is above this many voxels did not converge (folding, or a warp
#: too large for the fixed-point iteration): it maps some points wrongly, and a result file says so
INVERSE_CONVERGED_VOXELS = 0.1
#: an inverse is consistent (judged by what it does, not by its own residual, which a fixed point of a
#: folded warp can make small) when warp then inverse brings 95 % of the fixed voxels back within this
#: many voxels
INVERSE_CONSISTENT_VOXELS = 1.0


@dataclass
class InverseField:
    """The inverse displacement ``v`` ``[B, d, *S_fixed]`` (normalized units) and how it was found:
    ``method`` ``exact``, ``symmetric`` (syn's halves) or ``fixed-point``; ``residual_voxels`` ``[B]``,
    the largest residual of the fixed-point equations in fixed voxels (0 for exact inverses), and
    ``iterations`` run."""

    displacement: torch.Tensor
    method: str
    residual_voxels: torch.Tensor
    iterations: int = 0


def dense_part(grid: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    """``u`` ``[B, d, *S_fixed]`` (normalized units) of a map ``grid`` ``[B, *S_fixed, d]`` whose
    linear part is ``matrix`` ``[B, d+1, d+1]``: the map with its linear part taken off."""
    points = apply_matrix(torch.linalg.inv(matrix.to(torch.float64)).to(grid.dtype), grid)
    return grid_to_field(points - identity_grid(grid.shape[1:-1], grid.device, grid.dtype))


def inverse_field(
    grid: torch.Tensor,
    matrix: torch.Tensor,
    transform: Transform | None,
    iterations: int = INVERSE_ITERATIONS,
    tolerance: float = INVERSE_TOLERANCE,
) -> InverseField:
    """The inverse of the dense part of a map (``grid``, ``matrix`` as :func:`dense_part`) that
    ``transform`` made (``None``: a field from elsewhere); see the module docstring."""
    shape, batch = tuple(grid.shape[1:-1]), len(grid)
    if transform is not None and not transform.deformable:
        zero = torch.zeros(batch, len(shape), *shape, device=grid.device)
        return InverseField(zero, "exact", torch.zeros(batch, device=grid.device))
    if isinstance(transform, SVF) and tuple(transform.field.shape[2:]) == shape:
        with torch.no_grad():
            inverse = exponentiate(-transform.field.detach(), transform.squaring_steps, transform.interpolation)
        return InverseField(inverse, "exact", torch.zeros(batch, device=grid.device))
    if isinstance(transform, SyN) and tuple(transform.field.shape[2:]) == shape:
        with torch.no_grad():
            moving_inverse, residual, done = invert_displacement(transform.field.detach(), iterations, tolerance)
            inverse = compose(transform.fixed_field.detach(), moving_inverse, transform.interpolation)
        return InverseField(inverse, "symmetric", torch.maximum(residual, transform.inversion_residual), done)
    inverse, residual, done = invert_displacement(dense_part(grid, matrix), iterations, tolerance)
    return InverseField(inverse, "fixed-point", residual, done)


def inverse_grid(matrix: torch.Tensor, field: InverseField, moving_shape: tuple[int, ...]) -> torch.Tensor:
    """The inverse map on the moving grid, ``[B, *S_moving, d]`` in fixed normalized coordinates:
    ``z -> y + v(y)``, ``y = matrix^-1 z``."""
    displacement = field.displacement
    identity = identity_grid(moving_shape, displacement.device, displacement.dtype)
    points = apply_matrix(torch.linalg.inv(matrix.to(torch.float64)).to(displacement.dtype), identity)
    return points + field_to_grid(sample(displacement, points, padding_mode="border"))


def consistency_mm(
    forward_grid: torch.Tensor, backward_grid: torch.Tensor, fixed_affine: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """How far the backward map after the forward one lands from each fixed voxel (mm): mean and
    95th percentile ``[B]`` over the fixed voxels that the forward map sends inside the moving
    image; ``fixed_affine`` ``[B, d+1, d+1]`` voxel -> world."""
    shape = tuple(forward_grid.shape[1:-1])
    landed = sample(grid_to_field(backward_grid), forward_grid, padding_mode="border")  # fixed normalized
    to_world = fixed_affine.to(torch.float64) @ normalized_to_voxel(shape, forward_grid.device)
    linear = to_world[:, : len(shape), : len(shape)].to(landed.dtype)
    offset = landed - grid_to_field(identity_grid(shape, forward_grid.device, forward_grid.dtype))
    error = torch.einsum("bij,bj...->bi...", linear, offset).norm(dim=1).flatten(1)
    inside = (forward_grid.abs() <= 1).all(-1).flatten(1)
    means, tails = [], []
    for values, keep in zip(error, inside):
        kept = values[keep] if bool(keep.any()) else values
        means.append(kept.mean())
        tails.append(torch.quantile(kept.float()[: 2**24], 0.95))  # quantile takes at most 2^24 values
    return torch.stack(means), torch.stack(tails)
