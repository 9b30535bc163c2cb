"""Coordinate frames linking the fixed and the moving image through their world (NIfTI) affines.

Linear transforms act in a centred, isotropic physical frame ``y = (X - c) / r``: ``X`` world
millimetres, ``c`` the centre of the fixed image, ``r`` half its largest extent. So a rotation is a
true rotation whatever the voxel spacing, and translations are of order one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from .spatial import default_affines, normalized_to_voxel, voxel_to_normalized


@dataclass
class Frames:
    """Homogeneous matrices ``[B, d+1, d+1]`` (float64) between the frames of one registration."""

    fixed_affine: torch.Tensor  # fixed voxel -> world mm
    moving_affine: torch.Tensor  # moving voxel -> world mm
    fixed_to_centred: torch.Tensor  # fixed normalized -> y
    centred_to_moving: torch.Tensor  # y -> moving normalized

    @property
    def header(self) -> torch.Tensor:
        """Initial alignment given by the headers: fixed normalized -> moving normalized."""
        return self.centred_to_moving @ self.fixed_to_centred

    def from_centred(self, transform: torch.Tensor) -> torch.Tensor:
        """A transform of ``y`` as a map from fixed normalized to moving normalized coordinates."""
        return self.centred_to_moving @ transform.to(torch.float64) @ self.fixed_to_centred


def make_frames(
    fixed_shape: Sequence[int],
    moving_shape: Sequence[int],
    batch: int,
    fixed_affine: torch.Tensor | None = None,
    moving_affine: torch.Tensor | None = None,
    device=None,
) -> Frames:
    """Frames for images of spatial shapes ``fixed_shape``/``moving_shape`` and optional affines.

    Without affines the fields of view coincide (see :func:`spatial.default_affines`).
    """
    dims = len(fixed_shape)
    default_fixed, default_moving = default_affines(fixed_shape, moving_shape, batch, device)
    fixed_affine = default_fixed if fixed_affine is None else fixed_affine.to(device, torch.float64)
    moving_affine = default_moving if moving_affine is None else moving_affine.to(device, torch.float64)
    normalized_to_world = fixed_affine @ normalized_to_voxel(fixed_shape, device)
    centre = normalized_to_world[:, :dims, dims]
    radius = normalized_to_world[:, :dims, :dims].norm(dim=1).amax(dim=1).clamp_min(1e-6)
    to_centred = torch.eye(dims + 1, dtype=torch.float64, device=device).repeat(batch, 1, 1)
    to_centred[:, :dims, :dims] /= radius.view(-1, 1, 1)
    to_centred[:, :dims, dims] = -centre / radius.view(-1, 1)
    from_centred = torch.linalg.inv(to_centred)
    world_to_moving = voxel_to_normalized(moving_shape, device) @ torch.linalg.inv(moving_affine)
    return Frames(
        fixed_affine=fixed_affine,
        moving_affine=moving_affine,
        fixed_to_centred=to_centred @ normalized_to_world,
        centred_to_moving=world_to_moving @ from_centred,
    )


def field_of_view_overlap(
    fixed_shape: Sequence[int],
    fixed_affine: torch.Tensor,
    moving_shape: Sequence[int],
    moving_affine: torch.Tensor,
    points: int = 9,
) -> float:
    """The share (0 to 1) of the fixed image's field of view that its header places inside the moving
    image's, from a lattice of ``points`` voxels an axis; affines ``[d+1, d+1]`` voxel -> world mm."""
    dims = len(fixed_shape)
    axes = [torch.linspace(0, n - 1, min(points, int(n)), dtype=torch.float64) for n in fixed_shape]
    lattice = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, dims)
    homogeneous = torch.cat([lattice, torch.ones(len(lattice), 1, dtype=torch.float64)], dim=1)
    fixed_to_moving = torch.linalg.inv(moving_affine.double()) @ fixed_affine.double()
    voxels = (homogeneous @ fixed_to_moving.T)[:, :dims]
    extent = torch.tensor([float(n) for n in moving_shape], dtype=torch.float64)
    inside = ((voxels >= -0.5) & (voxels <= extent - 0.5)).all(dim=1)
    return float(inside.double().mean())


def field_of_view_centre(shape: Sequence[int], affine: torch.Tensor) -> list[float]:
    """Where the header puts the centre of an image of ``shape`` (world mm): ``affine`` ``[d+1, d+1]``
    voxel -> world applied to the middle voxel."""
    dims = len(shape)
    middle = torch.tensor([(int(n) - 1) / 2 for n in shape], dtype=torch.float64)
    affine = affine.to(torch.float64)
    return (affine[:dims, :dims] @ middle + affine[:dims, dims]).tolist()
