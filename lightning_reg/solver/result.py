"""What a registration returns: the warp in every unit the edges of the system need, and its uses."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields, replace
from typing import Callable, Literal, Sequence

import torch

from .geometry.frames import Frames, make_frames
from .geometry.inverse import InverseField, consistency_mm, inverse_field, inverse_grid
from .geometry.labels import label_index, label_values, vote_labels
from .geometry.spatial import (
    apply_matrix,
    batch_affine,
    field_to_grid,
    gradient_voxels,
    grid_to_field,
    identity_grid,
    nan_marker,
    normalized_to_voxel,
    rescaled_affine,
    resize,
    sample,
    voxel_to_normalized,
)
from .geometry.transforms import Transform

#: how label maps are warped unless told (``register --label-mode``, ``test``, ``predict``, this API): the
#: one-hot encoding warped linearly, the most likely label kept (as ANTs' GenericLabel); or ``nearest``
#: the ways of warping label maps
LabelMode = Literal["linear", "nearest"]
LABEL_MODE: LabelMode = "linear"


@dataclass
class RegistrationResult:
    """The solution of ``register`` for ``B`` pairs.

    ``grid`` ``[B, *S, d]`` lives on the fixed image's grid (full resolution) and says where, in the
    moving image's normalized coordinates, to sample the moving image. ``loss_trace`` holds one
    ``[iterations_run, B]`` tensor of energies per scale. ``stationarity`` ``[B]`` (float64) says how
    close the solver came to a minimum at this result's scale: the norm of the energy's gradient at
    the returned parameters over its norm where the scale started (1: no progress, 0: stationary;
    0 also when the start was already stationary). ``None`` for results made elsewhere.
    """

    grid: torch.Tensor
    matrix: torch.Tensor
    frames: Frames
    moving_shape: tuple[int, ...]
    transform: Transform | None
    loss_trace: list[torch.Tensor] = field(default_factory=list)
    seconds: float = 0.0
    stationarity: torch.Tensor | None = None
    #: maps derived once from ``grid`` and ``frames`` (the metrics and qc.png both read them), with
    #: the grid and frames they came from; do not modify them in place
    _derived: dict[str, tuple] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def from_headers(
        cls,
        fixed_shape: Sequence[int],
        moving_shape: Sequence[int],
        fixed_affine: torch.Tensor,
        moving_affine: torch.Tensor,
    ) -> "RegistrationResult":
        """The map the headers alone give (no registration), fixed grid to moving grid through world
        coordinates: what ``register`` with no iteration returns. Affines ``[d+1, d+1]`` or
        ``[B, d+1, d+1]``, voxel -> world mm."""
        dims = len(fixed_shape)
        batch = fixed_affine.shape[0] if fixed_affine.dim() == 3 else 1
        device = fixed_affine.device
        fixed, moving = (batch_affine(affine, batch, dims) for affine in (fixed_affine, moving_affine))
        frames = make_frames(fixed_shape, moving_shape, batch, fixed, moving, device)
        identity = identity_grid(fixed_shape, device)
        return cls(
            grid=apply_matrix(frames.header.to(identity.dtype), identity),
            matrix=frames.header,
            frames=frames,
            moving_shape=tuple(int(n) for n in moving_shape),
            transform=None,
        )

    @classmethod
    def from_voxel_displacement(cls, displacement: torch.Tensor) -> "RegistrationResult":
        """The result of another method that predicts a displacement ``[B, d, *S]`` in voxels
        (array-order components, e.g. VoxelMorph's), for images of one shape without affines."""
        shape = tuple(displacement.shape[2:])
        batch, dims = displacement.shape[:2]
        scale = torch.tensor([2.0 / max(n - 1, 1) for n in shape], device=displacement.device)
        normalized = (displacement * scale.view(1, dims, *([1] * dims))).flip(1)  # grid_sample order: x first
        grid = identity_grid(shape, displacement.device, displacement.dtype) + field_to_grid(normalized)
        matrix = torch.eye(dims + 1, dtype=torch.float64, device=displacement.device).expand(batch, -1, -1)
        return cls(
            grid=grid,
            matrix=matrix,
            frames=make_frames(shape, shape, batch, device=displacement.device),
            moving_shape=shape,
            transform=None,
        )

    @property
    def dims(self) -> int:
        return self.grid.shape[-1]

    @property
    def fixed_shape(self) -> tuple[int, ...]:
        return tuple(self.grid.shape[1:-1])

    def displacement_normalized(self) -> torch.Tensor:
        """``grid - identity``, ``[B, d, *S]`` in normalized units (``grid_sample`` component order)."""
        identity = identity_grid(self.fixed_shape, self.grid.device, self.grid.dtype)
        return grid_to_field(self.grid - identity)

    def resized(self, shape: Sequence[int]) -> "RegistrationResult":
        """The same warp on a fixed grid of ``shape`` (same field of view), e.g. a coarse scale's
        answer at the image's resolution; differentiable, linear interpolation of the displacement."""
        shape = tuple(int(n) for n in shape)
        if shape == self.fixed_shape:
            return self
        identity = identity_grid(shape, self.grid.device, self.grid.dtype)
        grid = identity + field_to_grid(resize(self.displacement_normalized(), shape))
        frames = replace(self.frames, fixed_affine=rescaled_affine(self.frames.fixed_affine, self.fixed_shape, shape))
        return replace(self, grid=grid, frames=frames)

    def evaluated_at(self, shape: Sequence[int]) -> "RegistrationResult":
        """The transform evaluated on a fixed grid of ``shape`` (same field of view), e.g. the image's
        full resolution: an SVF is integrated and a B-spline evaluated there, where :meth:`resized`
        interpolates the warp. Not differentiable; needs ``transform``."""
        shape = tuple(int(n) for n in shape)
        if self.transform is None:
            raise ValueError("evaluated_at needs the result's transform; this result has only its grid (use resized)")
        transform = copy.copy(self.transform)
        with torch.no_grad():
            transform.start_scale(shape)
            grid = transform.grid()
        frames = replace(self.frames, fixed_affine=rescaled_affine(self.frames.fixed_affine, self.fixed_shape, shape))
        return replace(self, grid=grid, frames=frames, transform=transform)

    def pair(self, index: int) -> "RegistrationResult":
        """The result of pair ``index`` of the batch alone."""
        one = slice(index, index + 1)
        frames = type(self.frames)(**{item.name: getattr(self.frames, item.name)[one] for item in fields(self.frames)})
        stationarity = None if self.stationarity is None else self.stationarity[one]
        return replace(self, grid=self.grid[one], matrix=self.matrix[one], frames=frames, stationarity=stationarity)

    def _world_points(self, matrix: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
        return grid_to_field(apply_matrix(matrix.to(self.grid.device, torch.float32), points))

    def fixed_points_mm(self) -> torch.Tensor:
        """World coordinates (mm, NIfTI RAS) of the fixed voxels, ``[B, d, *S]``."""
        to_world = self.frames.fixed_affine @ normalized_to_voxel(self.fixed_shape, self.frames.fixed_affine.device)
        return self._world_points(to_world, identity_grid(self.fixed_shape, self.grid.device))

    def moving_points_mm(self) -> torch.Tensor:
        """World coordinates (mm, RAS) where each fixed voxel samples the moving image, ``[B, d, *S]``."""
        to_world = self.frames.moving_affine @ normalized_to_voxel(self.moving_shape, self.frames.moving_affine.device)
        return self._world_points(to_world, self.grid)

    def map_points_mm(self, points: torch.Tensor) -> torch.Tensor:
        """Fixed-space world points ``[B, N, d]`` (RAS mm) mapped into the moving image's world,
        ``[B, N, d]``: the map interpolated (linearly) between fixed voxels, extended beyond the
        fixed grid by its edge values (landmarks, for the target registration error)."""
        dims = self.dims
        to_normalized = voxel_to_normalized(self.fixed_shape, points.device) @ torch.linalg.inv(
            self.frames.fixed_affine.to(points.device, torch.float64)
        )
        where = apply_matrix(to_normalized.to(torch.float32), points.float())  # [B, N, d]
        at = sample(grid_to_field(self.grid), where.reshape(len(where), -1, *([1] * (dims - 1)), dims))
        moving = at.reshape(len(where), dims, -1).transpose(1, 2)  # moving normalized, [B, N, d]
        to_world = self.frames.moving_affine @ normalized_to_voxel(self.moving_shape, self.frames.moving_affine.device)
        return apply_matrix(to_world.to(moving.device, torch.float32), moving)

    def displacement_mm(self) -> torch.Tensor:
        """Displacement in world millimetres (RAS components), ``[B, d, *S]``."""
        return self.moving_points_mm() - self.fixed_points_mm()

    def _mm_to_fixed_voxels(self) -> torch.Tensor:
        """Linear map ``[B, d, d]`` from world millimetres to fixed-voxel steps."""
        linear = self.frames.fixed_affine[:, : self.dims, : self.dims]
        return torch.linalg.inv(linear).to(self.grid.device, torch.float32)

    def displacement_voxels(self) -> torch.Tensor:
        """Displacement in fixed-image voxels (array-order components), ``[B, d, *S]``."""
        return self._derive(
            "displacement_voxels",
            lambda: torch.einsum("bij,bj...->bi...", self._mm_to_fixed_voxels(), self.displacement_mm()),
        )

    def jacobian_determinant(self) -> torch.Tensor:
        """Determinant of the Jacobian of fixed world -> moving world, ``[B, 1, *S]`` (1 = volume kept)."""
        return self._derive("jacobian_determinant", self._jacobian_determinant)

    def _derive(self, name: str, compute: Callable[[], torch.Tensor]) -> torch.Tensor:
        """``compute()``, kept under ``name`` while ``grid`` and ``frames`` are the same objects."""
        held = self._derived.get(name)
        if held is None or held[0] is not self.grid or held[1] is not self.frames:
            held = self._derived[name] = (self.grid, self.frames, compute())
        return held[2]

    def _jacobian_determinant(self) -> torch.Tensor:
        points = self.moving_points_mm()
        per_voxel = gradient_voxels(points).movedim(1, -1).movedim(1, -1)  # [B, *S, out, axis]
        shape = (-1,) + (1,) * self.dims + (self.dims, self.dims)
        jacobian = per_voxel @ self._mm_to_fixed_voxels().reshape(shape)
        return torch.linalg.det(jacobian).unsqueeze(1)

    def inverse_field(self) -> InverseField:
        """The inverse of the dense part (``inverse.py``: exact for linear and svf, a fixed-point
        inversion with its residual for the other fields)."""
        return inverse_field(self.grid, self.matrix, self.transform)

    def inverse(self, field: InverseField | None = None) -> "RegistrationResult":
        """The map of the moving grid back onto the fixed image: its ``warp`` takes a fixed-space
        image onto the moving grid. ``field``: :meth:`inverse_field`, if already computed."""
        field = self.inverse_field() if field is None else field
        frames = make_frames(
            self.moving_shape,
            self.fixed_shape,
            len(self.grid),
            self.frames.moving_affine,
            self.frames.fixed_affine,
            device=self.grid.device,
        )
        return RegistrationResult(
            grid=inverse_grid(self.matrix, field, self.moving_shape),
            matrix=torch.linalg.inv(self.matrix.to(torch.float64)),
            frames=frames,
            moving_shape=self.fixed_shape,
            transform=None,
        )

    def inverse_consistency_mm(self, backward: "RegistrationResult") -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and 95th percentile ``[B]`` (mm) of how far ``backward`` (:meth:`inverse`) after this
        map lands from each fixed voxel, over the voxels mapped inside the moving image."""
        return consistency_mm(self.grid, backward.grid, self.frames.fixed_affine)

    def warp(self, image: torch.Tensor, mode: str = "bilinear", padding_mode: str = "zeros") -> torch.Tensor:
        """Moving-space image ``[B, C, *S_moving]`` resampled onto the fixed grid, ``[B, C, *S]``
        (NaN for a pair whose warp is not finite)."""
        warped = sample(image.float(), self.grid, mode=mode, padding_mode=padding_mode)
        return warped + nan_marker(self.grid).view(-1, *([1] * (warped.dim() - 1)))

    def warp_labels(self, labels: torch.Tensor, mode: str = LABEL_MODE) -> torch.Tensor:
        """Integer label map ``[B, 1, *S_moving]`` onto the fixed grid, ``[B, 1, *S]`` (same label values).

        ``nearest`` picks the nearest voxel; ``linear`` warps the one-hot encoding linearly and takes
        the most likely label (smoother boundaries, as ANTs' GenericLabel).
        """
        if mode not in ("nearest", "linear"):
            raise ValueError(f"label warping mode must be 'nearest' or 'linear', got {mode!r}")
        values = label_values(labels)
        if mode == "nearest":  # outside the moving image: background, index of 0
            background = int(label_index(values.new_zeros(1), values))
            warped = sample(
                label_index(labels, values).float() - background, self.grid, mode="nearest", padding_mode="zeros"
            )
            return values[warped.round().long() + background].to(labels.dtype)
        return values[vote_labels(label_index(labels, values), self.grid)].to(labels.dtype)
