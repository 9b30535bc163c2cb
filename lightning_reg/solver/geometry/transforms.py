"""Transformation representations, one class each, all with the same small interface.

A transform owns its parameters and turns them into a sampling grid on the fixed image's grid at
the current scale. The solver loop (``layer.py`` over the scales, ``optimize.py`` at one) only calls:

- ``setup(frames, batch, shape, init_matrix)`` once, ``start_scale(shape)`` at each scale;
- ``parameters()`` (the tensors the energy is differentiated against), ``set_parameters(values)``
  and ``grid()``;
- ``regularized_field()`` (voxel-unit displacement for explicit penalties, or None);
- ``prepare_gradients(grads)`` and ``stepped(directions, active)`` (the parameters after one step,
  out of place, so the implicit layer can differentiate through steps).

Parameters are reassigned, never modified in place: a shallow copy of a transform is a snapshot
of its state that later steps do not touch.

Linear transforms act in the centred physical frame of ``frames.py``; deformable ones hold a
displacement (or velocity, or control points) in fixed normalized coordinates, composed after an
initial linear map (the headers', or an affine registration's), as ANTs does: affine then warp.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from ..checks import check_number
from ..registry import build_named
from .filters import gaussian_smooth
from .frames import Frames
from .interpolation import cubic_bspline
from .invert_field import differentiable_inverse
from .spatial import (
    apply_matrix,
    compose,
    exponentiate,
    field_to_grid,
    identity_grid,
    resize,
    sample,
    voxel_size_normalized,
)


class Transform:
    """Base class; see the module docstring for the interface."""

    name = "base"
    deformable = False
    #: whether its steps are smoothed by ``smooth_grad_sigma`` and ``smooth_warp_sigma`` (the dense fields;
    #: B-spline's control grid is smooth by construction)
    smoothed = False
    #: how the transform samples fields inside the energy (svf's squarings): ``bilinear`` or
    #: ``cubic``; the layer sets it from its ``interpolation``
    interpolation = "bilinear"
    #: the fixed and moving grids' frames (``setup``)
    frames: Frames

    def __init__(self, learning_rate: float) -> None:
        self.learning_rate = check_number("learning_rate", learning_rate, 0, strict=True)
        self.shape: tuple[int, ...] = ()

    def setup(self, frames: Frames, batch: int, shape: Sequence[int], init_matrix: torch.Tensor | None = None) -> None:
        raise NotImplementedError

    def start_scale(self, shape: Sequence[int]) -> None:
        """Move to the scale of spatial ``shape``; the parameters become fresh leaves (a constant start)."""
        self.shape = tuple(int(n) for n in shape)
        self.set_parameters([parameter.detach().requires_grad_(True) for parameter in self.parameters()])

    def parameters(self) -> list[torch.Tensor]:
        raise NotImplementedError

    def set_parameters(self, values: list[torch.Tensor]) -> None:
        raise NotImplementedError

    def grid(self) -> torch.Tensor:
        """Sampling grid ``[B, *shape, d]`` in the moving image's normalized coordinates."""
        raise NotImplementedError

    def matrix(self) -> torch.Tensor:
        """The linear part ``[B, d+1, d+1]``: fixed normalized -> moving normalized."""
        raise NotImplementedError

    def energy_grids(self) -> tuple[torch.Tensor | None, torch.Tensor]:
        """The grids the energy samples the images at: the fixed image's (``None``: its own grid, for
        every transform but syn, which deforms both) and the moving image's (``grid``)."""
        return None, self.grid()

    def regularized_field(self) -> torch.Tensor | None:
        return None

    def step_bound(self) -> float:
        """Largest parameter change of a line-search optimizer's first step (parameter units)."""
        return self.learning_rate

    def preconditioner(self) -> list[torch.Tensor] | None:
        """A positive diagonal scaling per parameter tensor (broadcastable) for the quasi-Newton
        optimizers' initial inverse Hessian, or None (identity)."""
        return None

    def prepare_gradients(self, gradients: list[torch.Tensor]) -> list[torch.Tensor]:
        return gradients

    def stepped(
        self, directions: list[torch.Tensor], active: torch.Tensor | None = None, frozen_scale: bool = False
    ) -> list[torch.Tensor]:
        """Parameters after one step along ``directions`` (pairs not ``active`` keep theirs).

        Differentiable; ``frozen_scale`` treats a step's normalization as a constant.
        """
        raise NotImplementedError

    def _identity(self, like: torch.Tensor) -> torch.Tensor:
        """The identity grid of the current scale in ``like``'s device and floating type."""
        return identity_grid(self.shape, device=like.device, dtype=like.dtype)


def _masked(active: torch.Tensor | None, new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """``new`` where the pair is still being optimized, ``old`` elsewhere."""
    if active is None:
        return new
    return torch.where(active.view(-1, *([1] * (new.dim() - 1))), new, old)


class LinearTransform(Transform):
    """Shared machinery of rigid and affine: plain Adam steps in the centred frame."""

    def __init__(self, learning_rate: float = 1e-2) -> None:
        super().__init__(learning_rate)
        self._parameters: list[torch.Tensor] = []

    def centred_matrix(self) -> torch.Tensor:
        """The transform of the centred frame ``y``, ``[B, d+1, d+1]``."""
        raise NotImplementedError

    def parameters(self) -> list[torch.Tensor]:
        return self._parameters

    def set_parameters(self, values: list[torch.Tensor]) -> None:
        self._parameters = list(values)

    def matrix(self) -> torch.Tensor:
        return self.frames.from_centred(self.centred_matrix())

    def grid(self) -> torch.Tensor:
        identity = self._identity(self._parameters[0])
        return apply_matrix(self.matrix().to(identity.dtype), identity)

    def stepped(self, directions, active=None, frozen_scale=False):
        return [
            _masked(active, parameter - self.learning_rate * direction, parameter)
            for parameter, direction in zip(self._parameters, directions)
        ]

    @staticmethod
    def _homogeneous(linear: torch.Tensor, translation: torch.Tensor) -> torch.Tensor:
        batch, dims = translation.shape
        bottom = torch.zeros(batch, 1, dims + 1, dtype=linear.dtype, device=linear.device)
        bottom[:, 0, dims] = 1.0
        return torch.cat([torch.cat([linear, translation.unsqueeze(-1)], dim=2), bottom], dim=1)


class Rigid(LinearTransform):
    """Rotation (exponential of a skew-symmetric matrix) and translation, in world millimetres."""

    name = "rigid"

    def setup(self, frames, batch, shape, init_matrix=None) -> None:
        if init_matrix is not None:
            raise ValueError("rigid registration starts from the headers; it takes no init_matrix")
        self.frames = frames
        dims = len(shape)
        device = frames.fixed_affine.device
        angles = 1 if dims == 2 else 3
        self._parameters = [
            torch.zeros(batch, angles, device=device, requires_grad=True),
            torch.zeros(batch, dims, device=device, requires_grad=True),
        ]

    def rotation(self) -> torch.Tensor:
        """Rotation matrices ``[B, d, d]``."""
        angles = self._parameters[0]
        batch = angles.shape[0]
        dims = 2 if angles.shape[1] == 1 else 3
        skew = torch.zeros(batch, dims, dims, dtype=angles.dtype, device=angles.device)
        pairs = [(0, 1)] if dims == 2 else [(1, 2), (0, 2), (0, 1)]
        for index, (row, column) in enumerate(pairs):
            skew[:, row, column] = -angles[:, index]
            skew[:, column, row] = angles[:, index]
        return torch.linalg.matrix_exp(skew)

    def centred_matrix(self) -> torch.Tensor:
        return self._homogeneous(self.rotation(), self._parameters[1])


class Affine(LinearTransform):
    """General affine map (``I + L``, translation) in world millimetres; may start from a rigid result."""

    name = "affine"

    def setup(self, frames, batch, shape, init_matrix=None) -> None:
        self.frames = frames
        dims = len(shape)
        device = frames.fixed_affine.device
        linear = torch.zeros(batch, dims, dims, device=device)
        translation = torch.zeros(batch, dims, device=device)
        if init_matrix is not None:
            centred = (
                torch.linalg.inv(frames.centred_to_moving)
                @ init_matrix.to(torch.float64)
                @ torch.linalg.inv(frames.fixed_to_centred)
            )
            linear = (centred[:, :dims, :dims] - torch.eye(dims, dtype=torch.float64, device=device)).float()
            translation = centred[:, :dims, dims].float()
        self._parameters = [linear.requires_grad_(), translation.requires_grad_()]

    def centred_matrix(self) -> torch.Tensor:
        linear, translation = self._parameters
        eye = torch.eye(linear.shape[-1], dtype=linear.dtype, device=linear.device)
        return self._homogeneous(eye + linear, translation)


class DenseTransform(Transform):
    """A dense field on the fixed grid, after an initial linear map; Adam steps of bounded size.

    ``learning_rate`` is the largest step of one iteration, in voxels of the current scale
    (FireANTs' scaled Adam direction); ``smooth_grad_sigma`` and ``smooth_warp_sigma`` are Gaussian
    sigmas in voxels of the current scale for the gradient and for the field after each step.
    """

    deformable = True
    smoothed = True

    def __init__(
        self, learning_rate: float = 0.25, smooth_grad_sigma: float = 1.0, smooth_warp_sigma: float = 0.5
    ) -> None:
        super().__init__(learning_rate)
        self.smooth_grad_sigma = check_number("smooth_grad_sigma", smooth_grad_sigma, 0)
        self.smooth_warp_sigma = check_number("smooth_warp_sigma", smooth_warp_sigma, 0)
        self._field: torch.Tensor | None = None

    #: the linear map the dense part starts from, fixed normalized -> moving normalized (``setup``)
    initial: torch.Tensor

    @property
    def field(self) -> torch.Tensor:
        """The parameters of the current scale ``[B, d, *S]`` (a displacement, velocity or lattice)."""
        if self._field is None:
            raise RuntimeError(f"{self.name}: call setup() and start_scale() first")
        return self._field

    @field.setter
    def field(self, value: torch.Tensor) -> None:
        self._field = value

    def setup(self, frames, batch, shape, init_matrix=None) -> None:
        self.frames = frames
        self.batch = batch
        self.initial = frames.header if init_matrix is None else init_matrix.to(torch.float64)
        eye = torch.eye(len(shape) + 1, dtype=torch.float64, device=self.initial.device)
        self.initial_is_identity = bool(torch.allclose(self.initial, eye.expand_as(self.initial), atol=1e-10))
        self._field = None

    def start_scale(self, shape) -> None:
        shape = tuple(int(n) for n in shape)
        self.field = self._at_scale(self._field, shape)
        super().start_scale(shape)

    def _at_scale(self, field: torch.Tensor | None, shape: tuple[int, ...]) -> torch.Tensor:
        """A field carried to the grid of ``shape`` (zero before the first scale), detached."""
        if field is None:
            return torch.zeros(self.batch, len(shape), *shape, device=self.initial.device)
        return resize(field.detach(), shape)

    def parameters(self) -> list[torch.Tensor]:
        return [] if self._field is None else [self.field]

    def set_parameters(self, values: list[torch.Tensor]) -> None:
        (self.field,) = values

    def displacement(self) -> torch.Tensor:
        """Displacement ``[B, d, *shape]`` in fixed normalized units, before the linear map."""
        return self.field

    def grid(self) -> torch.Tensor:
        points = self._identity(self.field) + field_to_grid(self.displacement())
        if self.initial_is_identity:
            return points
        return apply_matrix(self.initial.to(points.dtype), points)

    def matrix(self) -> torch.Tensor:
        return self.initial

    def regularized_field(self) -> torch.Tensor:
        return self._in_voxels(self.field)

    def step_bound(self) -> float:
        """``learning_rate`` voxels of the current scale, in normalized units (the largest voxel)."""
        return self.learning_rate * 2.0 / max(min(self.shape) - 1, 1)

    def _in_voxels(self, field: torch.Tensor) -> torch.Tensor:
        """A normalized-unit field ``[B, d, *shape]`` in voxels of the current scale."""
        voxel = voxel_size_normalized(self.shape, field.device)
        return field / voxel.view(1, -1, *([1] * len(self.shape)))

    def prepare_gradients(self, gradients):
        return [gaussian_smooth(gradient, self.smooth_grad_sigma) for gradient in gradients]

    def step(self, direction: torch.Tensor, frozen_scale: bool = False) -> torch.Tensor:
        """Scaled step ``[B, d, *S]`` (normalized units): at most ``learning_rate`` voxels anywhere."""
        dims = len(self.shape)
        # max before sqrt: sqrt's derivative at the zero vectors of flat regions would be NaN
        largest = direction.pow(2).sum(1).flatten(1).amax(1).clamp_min(1.0).sqrt()
        if frozen_scale:
            largest = largest.detach()
        voxel = voxel_size_normalized(self.shape, direction.device).view(1, dims, *([1] * dims))
        return -self.learning_rate * voxel * direction / largest.view(-1, *([1] * (dims + 1)))

    def apply_step(self, field: torch.Tensor, step: torch.Tensor) -> torch.Tensor:
        """The field after ``step``; additive by default."""
        return field + step

    def stepped(self, directions, active=None, frozen_scale=False):
        """Each field (syn has two) after its own bounded step, smoothed."""
        return [
            _masked(
                active,
                gaussian_smooth(self.apply_step(field, self.step(direction, frozen_scale)), self.smooth_warp_sigma),
                field,
            )
            for field, direction in zip(self.parameters(), directions)
        ]


class FreeForm(DenseTransform):
    """Additive displacement field ``u``: ``phi(x) = x + u(x)``."""

    name = "freeform"


class Greedy(DenseTransform):
    """Compositive diffeomorphic updates ``u <- delta + u o (Id + delta)`` with smoothing (greedy SyN)."""

    name = "greedy"

    def apply_step(self, field, step):
        return compose(field, step)


class SVF(DenseTransform):
    """Stationary velocity field ``v``; ``phi = exp(v)`` by scaling and squaring."""

    name = "svf"

    def __init__(
        self,
        learning_rate: float = 0.25,
        smooth_grad_sigma: float = 1.0,
        smooth_warp_sigma: float = 0.5,
        squaring_steps: int = 7,
    ) -> None:
        super().__init__(learning_rate, smooth_grad_sigma, smooth_warp_sigma)
        if squaring_steps < 0:
            raise ValueError(f"squaring_steps must be >= 0, got {squaring_steps}")
        self.squaring_steps = int(squaring_steps)

    def displacement(self):
        return exponentiate(self.field, self.squaring_steps, self.interpolation)


class BSpline(DenseTransform):
    """Cubic B-spline free-form deformation on a control lattice fixed in normalized coordinates.

    ``control_spacing`` is the knot spacing in voxels of the full-resolution fixed image; the same
    lattice serves every scale, so nothing is lost between scales.
    """

    name = "bspline"
    smoothed = False

    def __init__(
        self,
        learning_rate: float = 0.25,
        control_spacing: float = 5.0,
        smooth_grad_sigma: float = 0.0,
        smooth_warp_sigma: float = 0.0,
    ) -> None:
        super().__init__(learning_rate, smooth_grad_sigma, smooth_warp_sigma)
        if control_spacing <= 0:
            raise ValueError(f"control_spacing must be positive, got {control_spacing}")
        self.control_spacing = float(control_spacing)

    def setup(self, frames, batch, shape, init_matrix=None) -> None:
        super().setup(frames, batch, shape, init_matrix)
        self.knot = [2.0 * self.control_spacing / max(n - 1, 1) for n in shape]
        self.lattice = [int(math.ceil(2.0 / knot)) + 3 for knot in self.knot]
        device = self.initial.device
        self.field = torch.zeros(batch, len(shape), *self.lattice, device=device)

    def start_scale(self, shape) -> None:
        Transform.start_scale(self, shape)
        device = self.field.device
        self.weights = []
        for size, knot, count in zip(self.shape, self.knot, self.lattice):
            position = torch.linspace(-1.0, 1.0, size, device=device)
            knots = -1.0 + (torch.arange(count, device=device) - 1) * knot
            self.weights.append(cubic_bspline((position[:, None] - knots[None, :]) / knot))

    def displacement(self):
        dense = self.field
        for axis, weights in enumerate(self.weights):
            dense = torch.tensordot(dense, weights, dims=([2 + axis], [1])).movedim(-1, 2 + axis)
        return dense

    def regularized_field(self):
        return self._in_voxels(self.displacement())

    def preconditioner(self):
        """``1 / influence`` of each control point (the sum of its squared basis weights over the
        grid, relative to the largest): the lattice's outer knots barely reach the image, so without
        it their curvature is orders of magnitude below the inner ones' and L-BFGS crawls."""
        influence = None
        for weights in self.weights:
            axis = weights.pow(2).sum(0)
            influence = axis if influence is None else influence[..., None] * axis
        influence = influence / influence.max()
        return [influence.clamp_min(1e-3).reciprocal()[None, None]]


class SyN(Greedy):
    """Symmetric normalization (ANTs' SyN): both images deformed toward a midpoint space on the fixed
    grid, ``sim(F o psi_f, M o A o psi_m)``, each half ``psi = Id + u`` updated compositively, at most
    ``learning_rate`` voxels a step, smoothed as greedy's. The map is ``A psi_m psi_f^-1`` (fixed ->
    moving) and its inverse ``psi_f psi_m^-1 A^-1``: both from the same solve, each half inverted by
    the fixed point of ``inversion.py`` (half the deformation each, so it converges quickly).

    Parameters: ``field`` (the moving half ``u_m``) and ``fixed_field`` (the fixed half ``u_f``),
    normalized units on the fixed grid. ``regularized_field`` is both halves (``2d`` channels).

    ``learning_rate`` bounds each half's step, so by default half of greedy's: the map then moves at
    most as far a step as greedy's. With greedy's 0.25 per half the composed map inverted a little
    volume (NDV 0.0012 % and 0.0032 % on two synthetic 96x112 pairs; Dice 0.951, 0.943); with 0.125
    none (Dice 0.952, 0.944).
    """

    name = "syn"

    def __init__(
        self, learning_rate: float = 0.125, smooth_grad_sigma: float = 1.0, smooth_warp_sigma: float = 0.5
    ) -> None:
        super().__init__(learning_rate, smooth_grad_sigma, smooth_warp_sigma)

    def setup(self, frames, batch, shape, init_matrix=None) -> None:
        super().setup(frames, batch, shape, init_matrix)
        self._fixed_field: torch.Tensor | None = None
        #: ``[B]`` voxels: how well the fixed half was inverted for the last ``grid()``
        self.inversion_residual = torch.zeros(batch, device=self.initial.device)

    def start_scale(self, shape) -> None:
        self.fixed_field = self._at_scale(self._fixed_field, tuple(int(n) for n in shape))
        super().start_scale(shape)

    def parameters(self) -> list[torch.Tensor]:
        return [] if self._field is None else [self.field, self.fixed_field]

    def set_parameters(self, values: list[torch.Tensor]) -> None:
        self.field, self.fixed_field = values

    @property
    def fixed_field(self) -> torch.Tensor:
        """The fixed image's half ``[B, d, *S]`` of the current scale."""
        if self._fixed_field is None:
            raise RuntimeError("syn: call setup() and start_scale() first")
        return self._fixed_field

    @fixed_field.setter
    def fixed_field(self, value: torch.Tensor) -> None:
        self._fixed_field = value

    def _linear(self, points: torch.Tensor) -> torch.Tensor:
        return points if self.initial_is_identity else apply_matrix(self.initial.to(points.dtype), points)

    def energy_grids(self):
        identity = self._identity(self.field)
        return identity + field_to_grid(self.fixed_field), self._linear(identity + field_to_grid(self.field))

    def grid(self) -> torch.Tensor:
        """``A psi_m psi_f^-1`` on the fixed grid; differentiable (``inversion.differentiable_inverse``)."""
        inverse, self.inversion_residual = differentiable_inverse(self.fixed_field)
        midpoint = self._identity(self.field) + field_to_grid(inverse)
        moving_half = sample(self.field, midpoint, mode=self.interpolation, padding_mode="border")
        return self._linear(midpoint + field_to_grid(moving_half))

    def regularized_field(self) -> torch.Tensor:
        return torch.cat([self._in_voxels(self.field), self._in_voxels(self.fixed_field)], dim=1)


TRANSFORMS: dict[str, type[Transform]] = {cls.name: cls for cls in (Rigid, Affine, FreeForm, Greedy, SVF, BSpline, SyN)}


LINEAR = tuple(name for name, cls in TRANSFORMS.items() if not cls.deformable)


def stages(transform: str) -> tuple[str | None, str]:
    """``(linear transform solved first or None, final transform)`` of a plan such as ``affine+svf``
    (the second starts from the first, as in ANTs) or of one name."""
    parts = transform.split("+")
    if len(parts) == 1:
        return None, parts[0]
    if len(parts) != 2 or parts[0] not in LINEAR or parts[1] in LINEAR:
        raise ValueError(
            f"transform {transform!r}: combine one linear transform ({', '.join(LINEAR)}) with one "
            f"deformable one, e.g. affine+svf"
        )
    return parts[0], parts[1]


def make_transform(name: str | Transform, **options) -> Transform:
    """Build a transform by name (``rigid``, ``affine``, ``freeform``, ``greedy``, ``svf``, ``bspline``, ``syn``)."""
    if isinstance(name, Transform):
        return name
    return build_named(TRANSFORMS, "transform", name, options)
