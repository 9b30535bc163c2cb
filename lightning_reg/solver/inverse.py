"""Inverse transforms: the map from the moving image's grid back to the fixed image, for every
representation, and how far forward-then-inverse lands from where it started.

A result's map is ``x -> M (x + u(x))`` in normalized coordinates: ``M`` its linear part
(``RegistrationResult.matrix``, fixed normalized -> moving normalized), ``u`` its dense part on the
fixed grid (zero for linear transforms). The inverse is ``z -> y + v(y)``, ``y = M^-1 z``, with ``v``
the inverse displacement on the fixed grid (``y + v(y)`` undoes ``x + u(x)``):

- linear: ``v = 0``, exact;
- svf: ``v = exp(-velocity) - Id``, exact up to scaling and squaring;
- greedy, freeform, bspline, or a field from elsewhere: the fixed point of ``v(y) = -u(y + v(y))``
  (no closed form), iterated with half steps (the plain iteration does not contract where the map
  compresses; measured on a greedy warp: largest residual 2.8 voxels after 200 plain iterations, 3e-6
  with half steps); its residual ``|v(y) + u(y + v(y))|`` says how well it converged (a folding
  field has no inverse there, and says so through its residual or its Jacobian).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from .frames import make_frames
from .result import RegistrationResult
from .spatial import (
    apply_matrix,
    exponentiate,
    field_to_grid,
    grid_to_field,
    identity_grid,
    normalized_to_voxel,
    sample,
)
from .transforms import SVF

#: the fixed-point inversion stops when the largest change of ``v`` is below this many voxels
INVERSE_TOLERANCE = 1e-4
INVERSE_ITERATIONS = 200
#: the share of each fixed-point update taken
INVERSE_STEP = 0.5


@dataclass
class InverseField:
    """The inverse displacement ``v`` ``[B, d, *S_fixed]`` (normalized units) and how it was found:
    ``method`` ``exact`` or ``fixed-point``; ``residual_voxels`` ``[B]``, the largest residual of
    the fixed-point equation in fixed voxels (0 for exact inverses), and ``iterations`` run."""

    displacement: torch.Tensor
    method: str
    residual_voxels: torch.Tensor
    iterations: int = 0


def dense_part(result: RegistrationResult) -> torch.Tensor:
    """``u`` ``[B, d, *S_fixed]`` (normalized units): the result's map with its linear part taken off."""
    inverse_matrix = torch.linalg.inv(result.matrix.to(torch.float64))
    points = apply_matrix(inverse_matrix.to(result.grid.dtype), result.grid)
    identity = identity_grid(result.fixed_shape, result.grid.device, result.grid.dtype)
    return grid_to_field(points - identity)


def _in_voxels(field: torch.Tensor) -> torch.Tensor:
    """The largest length, ``[B]``, of a normalized-unit field ``[B, d, *S]`` in voxels of its grid."""
    shape = field.shape[2:]
    half = torch.tensor([max(int(n) - 1, 1) / 2 for n in shape][::-1], device=field.device, dtype=field.dtype)
    return (field * half.view(1, -1, *([1] * len(shape)))).norm(dim=1).flatten(1).amax(1)


def inverse_field(result: RegistrationResult, iterations: int = INVERSE_ITERATIONS,
                  tolerance: float = INVERSE_TOLERANCE) -> InverseField:
    """The inverse of the result's dense part (module docstring)."""
    transform = result.transform
    if transform is not None and not transform.deformable:
        zero = torch.zeros(len(result.grid), result.dims, *result.fixed_shape, device=result.grid.device)
        return InverseField(zero, "exact", torch.zeros(len(zero), device=zero.device))
    if isinstance(transform, SVF) and tuple(transform.field.shape[2:]) == result.fixed_shape:
        with torch.no_grad():
            inverse = exponentiate(-transform.field.detach(), transform.squaring_steps, transform.interpolation)
        return InverseField(inverse, "exact", torch.zeros(len(inverse), device=inverse.device))
    forward = dense_part(result).detach()
    if not bool(forward.abs().amax() > 0):
        return InverseField(torch.zeros_like(forward), "exact", torch.zeros(len(forward), device=forward.device))
    identity = identity_grid(result.fixed_shape, forward.device, forward.dtype)
    inverse, done = -forward, 0
    with torch.no_grad():
        while done < iterations:
            step = INVERSE_STEP * (-sample(forward, identity + field_to_grid(inverse), padding_mode="border") - inverse)
            inverse, done = inverse + step, done + 1
            if bool((_in_voxels(step) < tolerance).all()):
                break
        residual = inverse + sample(forward, identity + field_to_grid(inverse), padding_mode="border")
    return InverseField(inverse, "fixed-point", _in_voxels(residual), done)


def inverse(result: RegistrationResult, field: InverseField | None = None) -> RegistrationResult:
    """The map of the moving grid onto the fixed image: a result whose "fixed" image is the moving
    one (``warp`` of a fixed-space image gives it on the moving grid). ``field``: an
    :func:`inverse_field` already computed."""
    field = inverse_field(result) if field is None else field
    inverse_matrix = torch.linalg.inv(result.matrix.to(torch.float64))
    moving_identity = identity_grid(result.moving_shape, result.grid.device, result.grid.dtype)
    points = apply_matrix(inverse_matrix.to(result.grid.dtype), moving_identity)  # fixed normalized
    grid = points + field_to_grid(sample(field.displacement, points, padding_mode="border"))
    frames = make_frames(result.moving_shape, result.fixed_shape, len(result.grid),
                         result.frames.moving_affine, result.frames.fixed_affine, device=result.grid.device)
    return RegistrationResult(grid=grid, matrix=inverse_matrix, frames=frames, moving_shape=result.fixed_shape,
                              transform=None)


def inverse_consistency_mm(forward: RegistrationResult, backward: RegistrationResult) -> tuple[torch.Tensor,
                                                                                                torch.Tensor]:
    """How far ``backward`` after ``forward`` lands from each fixed voxel (mm): mean and 95th
    percentile ``[B]`` over the fixed voxels that ``forward`` maps inside the moving image."""
    landed = sample(grid_to_field(backward.grid), forward.grid, padding_mode="border")  # fixed normalized
    identity = identity_grid(forward.fixed_shape, forward.grid.device, forward.grid.dtype)
    to_world = (forward.frames.fixed_affine @ normalized_to_voxel(forward.fixed_shape, forward.grid.device))
    linear = to_world[:, :forward.dims, :forward.dims].to(landed.dtype)
    error = torch.einsum("bij,bj...->bi...", linear, landed - grid_to_field(identity)).norm(dim=1).flatten(1)
    inside = (forward.grid.abs() <= 1).all(-1).flatten(1)
    means, tails = [], []
    for values, keep in zip(error, inside):
        kept = values[keep] if bool(keep.any()) else values
        means.append(kept.mean())
        tails.append(torch.quantile(kept.float()[:2**24], 0.95))
    return torch.stack(means), torch.stack(tails)
