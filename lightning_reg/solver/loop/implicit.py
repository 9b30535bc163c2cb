"""Gradients of the solver's optimum with respect to the features, without storing its iterations.

At a solution ``theta*`` of one scale, ``g(theta*, F) = dE/dtheta = 0``. For an upstream gradient
``v = dL/dtheta*`` the implicit function theorem gives ``dL/dF = -(dg/dF)^T H^-1 v`` with
``H = dg/dtheta``. :class:`ImplicitSolution` returns ``theta*`` unchanged in the forward pass and
computes ``dL/dF`` in the backward pass in one of two ways:

- ``jfb``: differentiate ``k`` solver steps taken from the detached ``theta*`` with the optimizer's
  state frozen (Jacobian-free backprop; ``H^-1`` is replaced by the step's preconditioner: Adam's
  moments, or L-BFGS' inverse-Hessian estimate, which makes it close to ``ift``);
  With ``phantom_damping`` below 1 each step is damped, ``theta <- (1 - a) theta + a T(theta)``:
  Geng et al.'s phantom gradient (NeurIPS 2021; k = 5, a = 0.5);
- ``ift``: solve ``(H + damping) w = v`` (conjugate gradient on Hessian-vector products, or the
  exact Hessian for transforms with few parameters), then ``dL/dF = -d<g(theta*, F), w>/dF``.

``ift`` is exact only where ``theta*`` is a minimum of the energy: with ``lbfgs`` or ``gd`` run to
a small stationarity. Adam's steps are smoothed and bounded, so its answer is the fixed point of
its step map, not a stationary point of the energy, and ``ift`` there is an approximation.

Where ``H`` is singular (no regularizer, the aperture problem: directions the energy does not
see) the system has no unique solution; ``ift`` returns the damped (Tikhonov) one, whose part
along those directions scales with ``1 / damping``, and warns once (:class:`SingularHessianWarning`).
A backward that would return an all-zero gradient for a non-zero upstream one raises instead.

Two modes need no function: ``unroll`` keeps the graph of every iteration; ``truncated`` keeps only
the last ``truncated_steps`` real iterations of each level (Adam's moments carried from the steps
before; truncated back-propagation, Shaban et al., AISTATS 2019), so the warp's graph starts afresh at
every level.
"""

from __future__ import annotations

import collections
import warnings
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch

from ..checks import check_number
from ..energy.objective import Objective
from ..geometry.transforms import Transform
from ..pairs import pair_dot, per_pair

#: Transforms with at most this many parameters per pair (or at most CG's cap, when forming
#: the Hessian costs no more Hessian-vector products than conjugate gradient) get it formed exactly.
EXACT_HESSIAN_SIZE = 64


BackwardMode = Literal["jfb", "ift", "unroll", "truncated"]


@dataclass(frozen=True)
class BackwardSettings:
    """How :class:`ImplicitSolution` differentiates (see the module docstring).

    Args:
        mode: ``jfb`` (default), ``ift``, ``unroll`` (the layer keeps every iteration's graph) or
            ``truncated`` (the graph of each level's last ``truncated_steps`` iterations).
        jfb_steps: differentiable solver steps of ``jfb``.
        phantom_damping: each ``jfb`` step's weight ``a`` in ``(1 - a) theta + a T(theta)`` (1: plain steps).
        truncated_steps: the real iterations per level ``truncated`` keeps the graph of.
        cg_iterations: conjugate gradient's cap for ``ift``; ``None``: :func:`cg_cap` of the problem
            (it warns when reached).
        cg_tolerance: the relative residual at which conjugate gradient stops.
        damping: added to the Hessian, relative to the curvature along the upstream gradient.
    """

    mode: BackwardMode = "jfb"
    jfb_steps: int = 1
    phantom_damping: float = 1.0
    truncated_steps: int = 5
    cg_iterations: int | None = None
    #: ``tests/solver/test_exactness.py``: with 1e-6, the default cap and the damping below, 3D
    #: ``ift`` is within 0.3 % of central finite differences; the old 20 iterations and damping 1e-3
    #: were 3-58 % off, silently
    cg_tolerance: float = 1e-6
    #: small enough not to bias a regular Hessian's answer, large enough to keep a singular one's
    #: finite (it warns then)
    damping: float = 1e-6

    def __post_init__(self) -> None:
        if self.mode not in get_args(BackwardMode):
            raise ValueError(f"unknown backward mode {self.mode!r}; choose one of {', '.join(get_args(BackwardMode))}")
        if not 0 < self.phantom_damping <= 1:
            raise ValueError(f"phantom_damping must be in (0, 1], got {self.phantom_damping!r}")
        for name in ("jfb_steps", "truncated_steps", "cg_iterations"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or int(value) != value or value < 1):
                raise ValueError(f"{name} must be a whole number >= 1, got {value!r}")
        check_number("cg_tolerance", self.cg_tolerance, 0)
        check_number("damping", self.damping, 0)


#: conjugate gradient's default cap is this many iterations per voxel of the grid's longest side
CG_ITERATIONS_PER_SIDE = 20
CG_MIN_ITERATIONS = 50
#: conjugate gradient warns when it stops at its cap further than this factor above its tolerance
CG_WARN_FACTOR = 10


def cg_cap(parameters: list[torch.Tensor], iterations: int | None) -> int:
    """``iterations``, or by default :data:`CG_ITERATIONS_PER_SIDE` x the longest side of the
    parameters' grid (``[B, d, *S]``), at least :data:`CG_MIN_ITERATIONS`: conjugate gradient needs
    about the square root of the condition number, and a smoothness regularizer's grows with the
    square of the side; never more than the unknowns, where it is exact."""
    if iterations is not None:
        return int(iterations)
    sides = [max(p.shape[2:], default=1) for p in parameters]
    unknowns = sum(p[0].numel() for p in parameters)
    return min(unknowns, max(CG_MIN_ITERATIONS, CG_ITERATIONS_PER_SIDE * max(sides, default=1)))


@dataclass(frozen=True)
class ConjugateGradientReport:
    """What one ``ift`` backward's conjugate gradient reached: the largest relative residual over the
    batch's pairs and the iterations run (0 where the Hessian was formed exactly)."""

    relative_residual: float
    iterations: int
    cap: int


#: the reports of the latest ``ift`` backwards, oldest first (bounded: nobody may be reading them)
_REPORTS: collections.deque[ConjugateGradientReport] = collections.deque(maxlen=256)


def take_cg_reports() -> list[ConjugateGradientReport]:
    """The conjugate-gradient reports of the ``ift`` backwards since the last call (training logs them)."""
    reports = list(_REPORTS)
    _REPORTS.clear()
    return reports


class ConjugateGradientWarning(UserWarning):
    """Conjugate gradient of ``ift`` stopped at its cap above its tolerance: the gradient is approximate."""


class SingularHessianWarning(UserWarning):
    """The energy's Hessian at the solution is singular or indefinite: ``ift``'s answer there depends
    on ``damping`` (see the module docstring)."""


def warn_singular(detail: str) -> None:
    warnings.warn(
        f"implicit backward (ift): the Hessian of the energy at the solution is singular or not positive "
        f"definite ({detail}); the gradient along the directions it does not constrain depends on "
        f"damping. Add a regularizer (regularizer_weight > 0) or solve to a minimum (optimizer lbfgs).",
        SingularHessianWarning,
        stacklevel=3,
    )


@dataclass
class ScaleProblem:
    """What the backward pass needs to re-evaluate one scale's energy: a snapshot of the transform
    at that scale, the objective at that scale, and the optimizer whose frozen step ``jfb`` takes."""

    transform: Transform
    objective: Objective
    optimizer: Any
    settings: BackwardSettings

    def gradient(self, parameters: list[torch.Tensor], fixed: torch.Tensor, moving: torch.Tensor) -> list[torch.Tensor]:
        """``dE/dtheta`` at ``parameters``, with the graph kept (for second derivatives)."""
        self.transform.set_parameters(parameters)
        energy = self.objective(self.transform, fixed, moving).sum()
        return list(torch.autograd.grad(energy, parameters, create_graph=True))


def conjugate_gradient(
    hessian_product, rhs: list[torch.Tensor], damping: float, iterations: int, tolerance: float
) -> list[torch.Tensor]:
    """Solve ``(H + lambda I) w = rhs`` for every pair by conjugate gradient.

    ``hessian_product(p)`` returns ``H p``. ``lambda = damping * rhs'H rhs / rhs'rhs`` per pair,
    relative to the curvature along the right-hand side, so one setting serves any energy scale.
    A pair stops at relative residual ``tolerance`` or on non-positive curvature (then warns) with
    the iterate reached so far; a pair still above ``CG_WARN_FACTOR x tolerance`` after
    ``iterations`` warns (:class:`ConjugateGradientWarning`). Non-positive curvature met at the
    first step would leave the iterate at zero, so the pair gets ``rhs / |rhs'H rhs / rhs'rhs|``
    instead, the truncated-Newton choice (Nocedal & Wright, Alg. 7.1):
    a gradient step scaled by the curvature along it, never a silently zero gradient.
    """
    rhs_norm2 = pair_dot(rhs, rhs)
    tiny = torch.finfo(rhs[0].dtype).tiny
    product = hessian_product(rhs)
    curvature = pair_dot(rhs, product) / rhs_norm2.clamp_min(tiny)
    shift = damping * curvature.abs()
    solution = [torch.zeros_like(r) for r in rhs]
    residual = [r.clone() for r in rhs]
    direction = [r.clone() for r in rhs]
    residual_norm2 = new_norm2 = rhs_norm2
    active = rhs_norm2 > 0
    run = 0
    for iteration in range(iterations):
        run = iteration + 1
        if iteration > 0:
            product = hessian_product(direction)
        product = [h + per_pair(shift, p) * p for h, p in zip(product, direction)]
        step_curvature = pair_dot(direction, product)
        negative = active & ~(step_curvature > 0)
        if bool(negative.any()):
            warn_singular("conjugate gradient met non-positive curvature")
            if iteration == 0:
                first = negative & (curvature != 0)
                scale = torch.where(first, 1.0 / curvature.abs().clamp_min(tiny), torch.zeros_like(curvature))
                solution = [x + per_pair(scale, x) * r for x, r in zip(solution, rhs)]
        active = active & (step_curvature > 0)
        alpha = torch.where(active, residual_norm2 / step_curvature.clamp_min(tiny), torch.zeros_like(rhs_norm2))
        solution = [x + per_pair(alpha, x) * p for x, p in zip(solution, direction)]
        residual = [r - per_pair(alpha, r) * h for r, h in zip(residual, product)]
        new_norm2 = pair_dot(residual, residual)
        active = active & (new_norm2 > tolerance**2 * rhs_norm2)
        if not bool(active.any()):
            break
        beta = torch.where(active, new_norm2 / residual_norm2.clamp_min(tiny), torch.zeros_like(rhs_norm2))
        direction = [r + per_pair(beta, p) * p for r, p in zip(residual, direction)]
        residual_norm2 = new_norm2
    reached = float((new_norm2 / rhs_norm2.clamp_min(tiny)).sqrt().max())
    if run == iterations and reached > CG_WARN_FACTOR * tolerance:
        warnings.warn(
            f"implicit backward (ift): conjugate gradient stopped at its cap of {iterations} "
            f"iterations with relative residual {reached:.2g} (tolerance {tolerance:.2g}), so the "
            f"gradient is approximate; raise cg_iterations",
            ConjugateGradientWarning,
            stacklevel=3,
        )
    _REPORTS.append(ConjugateGradientReport(reached, run, iterations))
    return solution


def exact_solve(hessian_product, rhs: list[torch.Tensor], damping: float) -> list[torch.Tensor]:
    """Solve ``(H + lambda I) w = rhs`` per pair with ``H`` formed column by column (few parameters).

    ``lambda`` as in :func:`conjugate_gradient`.
    """
    batch = rhs[0].shape[0]
    sizes = [r[0].numel() for r in rhs]
    flat_rhs = torch.cat([r.reshape(batch, -1) for r in rhs], dim=1).double()
    columns = []
    for index in range(flat_rhs.shape[1]):
        unit = torch.zeros_like(flat_rhs)
        unit[:, index] = 1.0
        pieces = [piece.reshape(r.shape).to(r.dtype) for piece, r in zip(unit.split(sizes, dim=1), rhs)]
        columns.append(torch.cat([h.reshape(batch, -1) for h in hessian_product(pieces)], dim=1).double())
    hessian = torch.stack(columns, dim=2)
    hessian = 0.5 * (hessian + hessian.transpose(1, 2))
    rhs_norm2 = (flat_rhs * flat_rhs).sum(1).clamp_min(torch.finfo(torch.float64).tiny)
    curvature = torch.einsum("bi,bij,bj->b", flat_rhs, hessian, flat_rhs) / rhs_norm2
    eye = torch.eye(hessian.shape[1], dtype=hessian.dtype, device=hessian.device)
    eigenvalues = torch.linalg.eigvalsh(hessian)
    if bool((eigenvalues[:, 0] <= 1e-10 * eigenvalues[:, -1].abs().clamp_min(1e-300)).any()):
        warn_singular(
            f"smallest eigenvalue {float(eigenvalues[:, 0].min()):.3g}, largest {float(eigenvalues[:, -1].max()):.3g}"
        )
    damped = hessian + (damping * curvature.abs()).view(-1, 1, 1) * eye
    flat_solution = (torch.linalg.pinv(damped, hermitian=True) @ flat_rhs.unsqueeze(2)).squeeze(2)
    return [piece.reshape(r.shape).to(r.dtype) for piece, r in zip(flat_solution.split(sizes, dim=1), rhs)]


def ift_vector(
    problem: ScaleProblem,
    parameters: list[torch.Tensor],
    fixed: torch.Tensor,
    moving: torch.Tensor,
    upstream: list[torch.Tensor],
) -> list[torch.Tensor]:
    """``-(dg/dF)^T (H + lambda)^-1 upstream`` for ``F`` = ``fixed`` and ``moving`` (leaves)."""
    gradient = problem.gradient(parameters, fixed, moving)

    settings = problem.settings

    def hessian_product(vector: list[torch.Tensor]) -> list[torch.Tensor]:
        return list(
            torch.autograd.grad(gradient, parameters, grad_outputs=vector, retain_graph=True, materialize_grads=True)
        )

    cap = cg_cap(parameters, settings.cg_iterations)
    if sum(p[0].numel() for p in parameters) <= max(EXACT_HESSIAN_SIZE, cap):
        solution = exact_solve(hessian_product, upstream, settings.damping)
    else:
        solution = conjugate_gradient(hessian_product, upstream, settings.damping, cap, settings.cg_tolerance)
    grads = torch.autograd.grad(gradient, [fixed, moving], grad_outputs=solution, materialize_grads=True)
    return [-g for g in grads]


def jfb_vector(
    problem: ScaleProblem,
    parameters: list[torch.Tensor],
    fixed: torch.Tensor,
    moving: torch.Tensor,
    upstream: list[torch.Tensor],
) -> list[torch.Tensor]:
    """``(d theta_k / dF)^T upstream`` through ``k`` solver steps from the detached solution."""
    current, damping = parameters, problem.settings.phantom_damping
    for _ in range(problem.settings.jfb_steps):
        gradient = problem.gradient(current, fixed, moving)
        stepped = problem.optimizer.frozen_step(problem.transform, current, gradient)
        current = stepped if damping == 1 else [c + damping * (n - c) for c, n in zip(current, stepped)]
    return list(torch.autograd.grad(current, [fixed, moving], grad_outputs=upstream, materialize_grads=True))


#: what makes each backward mode's feature gradient exactly zero, and what to change
_ZERO_CAUSE = {
    "jfb": "the solver's step at the solution is zero (a collapsed step size?); use optimizer lbfgs or backward ift",
    "ift": "the energy has no curvature along the loss's direction at the solution (no regularizer, flat "
    "features); add a regularizer (regularizer_weight > 0) or use backward jfb",
}


class ImplicitSolution(torch.autograd.Function):
    """Identity on the solution ``theta*`` in the forward pass; implicit gradients to the features.

    ``apply(problem, fixed, moving, *parameters)`` returns the parameters, now depending on
    ``fixed`` and ``moving`` (the features of this scale).
    """

    @staticmethod
    def forward(ctx, problem: ScaleProblem, fixed: torch.Tensor, moving: torch.Tensor, *parameters):
        ctx.problem = problem
        ctx.save_for_backward(fixed, moving, *parameters)
        return tuple(parameter.detach().clone() for parameter in parameters)

    @staticmethod
    def backward(ctx, *upstream):
        fixed, moving, *parameters = ctx.saved_tensors
        problem: ScaleProblem = ctx.problem
        upstream = [torch.zeros_like(p) if u is None else u for u, p in zip(upstream, parameters)]
        with torch.enable_grad():
            fixed = fixed.detach().requires_grad_(True)
            moving = moving.detach().requires_grad_(True)
            parameters = [p.detach().requires_grad_(True) for p in parameters]
            vector = ift_vector if problem.settings.mode == "ift" else jfb_vector
            grad_fixed, grad_moving = vector(problem, parameters, fixed, moving, upstream)
        # NaN counts as non-zero, and an optimizer whose state overflowed has diverged: the training
        # loop reports those
        if (
            problem.optimizer.finite()
            and any(bool((u != 0).any()) for u in upstream)
            and not bool((grad_fixed != 0).any() or (grad_moving != 0).any())
        ):
            mode = problem.settings.mode
            raise RuntimeError(
                f"the implicit backward ({mode}) returned an all-zero gradient for the features "
                f"although the loss depends on the warp: {_ZERO_CAUSE[mode]}"
            )
        return (None, grad_fixed, grad_moving) + (None,) * len(parameters)
