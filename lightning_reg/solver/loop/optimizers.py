"""Step directions for the solver: scaled Adam (steps of bounded length, as FireANTs') and the
quasi-Newton family (``lbfgs``; ``gd`` is its memory-less member), whose steps a line search makes
decrease the energy. Each also gives the frozen step Jacobian-free backprop differentiates."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import torch

from ..pairs import pair_dot, pair_rms, per_pair

if TYPE_CHECKING:
    from ..geometry.transforms import Transform


class Adam:
    """Adam moments per parameter tensor; ``direction`` gives the bias-corrected step direction.

    Written here rather than taken from ``torch.optim`` because the step length is not Adam's:
    each transform scales the direction itself (to a fraction of a voxel, per pair). When the
    gradients carry a graph (unrolled backward mode) the moments are updated out of place.
    """

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.betas = betas
        self.eps = eps
        self.count = 0
        #: per pair ``[B]``, the gradient norm where the loop started (set by ``optimize.py``)
        self.initial_norm: torch.Tensor | None = None
        self.first: list[torch.Tensor] = []
        self.second: list[torch.Tensor] = []

    def direction(self, gradients: list[torch.Tensor]) -> list[torch.Tensor]:
        beta1, beta2 = self.betas
        if not self.first or any(m.shape != g.shape for m, g in zip(self.first, gradients)):
            self.first = [torch.zeros_like(g) for g in gradients]
            self.second = [torch.zeros_like(g) for g in gradients]
            self.count = 0
        self.count += 1
        if any(g.requires_grad for g in gradients):  # unrolled: keep the graph, out of place
            self.first = [beta1 * m + (1 - beta1) * g for m, g in zip(self.first, gradients)]
            self.second = [beta2 * v + (1 - beta2) * g * g for v, g in zip(self.second, gradients)]
        else:
            for first, second, gradient in zip(self.first, self.second, gradients):
                first.mul_(beta1).add_(gradient, alpha=1 - beta1)
                second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
        return [m / (1 - beta1**self.count) / self._root(v) for m, v in zip(self.first, self.second)]

    def _root(self, second: torch.Tensor) -> torch.Tensor:
        # the clamp keeps sqrt's derivative finite where a gradient is exactly zero
        return (second / (1 - self.betas[1] ** self.count)).clamp_min(1e-30).sqrt() + self.eps

    def pair_scales(self) -> list[torch.Tensor]:
        """Per tensor, one frozen scalar per pair ``1 / RMS(sqrt(v_hat))`` shaped to broadcast:
        the preconditioner of a step taken with the moments held fixed (Jacobian-free backprop)."""
        if not self.second:
            raise RuntimeError("Adam has taken no step yet")
        return [
            (pair_rms(second.detach().sqrt()) + self.eps).reciprocal() * (1 - self.betas[1] ** self.count) ** 0.5
            for second in self.second
        ]

    def finite(self) -> bool:
        """Whether the moments are finite (they overflow when the features diverge)."""
        return all(bool(torch.isfinite(v).all()) for v in self.second)

    def frozen_step(
        self, transform: "Transform", parameters: list[torch.Tensor], gradients: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """The transform's step from ``parameters`` (set on it) with the moments and the step's
        normalization held fixed (for ``jfb``)."""
        prepared = transform.prepare_gradients(gradients)
        directions = [scale * g for scale, g in zip(self.pair_scales(), prepared)]
        return transform.stepped(directions, frozen_scale=True)


class QuasiNewton:
    """Batched, per-pair limited-memory BFGS (``memory`` > 0, ``lbfgs``) or steepest descent with
    Barzilai-Borwein steps (``memory`` 0, ``gd``), for the line-search loop of ``optimize.py``.

    ``direction(gradients)`` is ``-H g`` per pair by the two-loop recursion over that pair's
    curvature pairs ``(s, y)``, with ``H0 = gamma D`` (``D`` the transform's diagonal ``scaling``,
    or the identity; ``gamma = s'y / y'Dy`` of the newest pair; before any, ``first_scale``). A
    pair's memory holds only updates with ``s'y > 0``, so ``H`` stays positive definite and the
    direction descends. Written here because ``torch.optim.LBFGS`` treats a
    batch as one problem (one line search, one memory) and cannot stop pairs on their own.
    """

    def __init__(self, memory: int = 10) -> None:
        if memory < 0:
            raise ValueError(f"memory must be >= 0, got {memory}")
        self.memory = int(memory)
        self.count = 0
        #: per pair ``[B]``, the gradient norm where the loop started (set by ``optimize.py``)
        self.initial_norm: torch.Tensor | None = None
        self.history: list[tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor]] = []
        self.gamma: torch.Tensor | None = None
        self.fallback: torch.Tensor | None = None

    #: diagonal of ``H0`` per parameter tensor (``Transform.preconditioner``), or None for identity
    scaling: list[torch.Tensor] | None = None

    def direction(self, gradients: list[torch.Tensor], first_scale: torch.Tensor | None = None) -> list[torch.Tensor]:
        """``-H g`` per pair (differentiable in ``gradients``; the memory is constant); ``first_scale``
        ``[B]`` is ``gamma`` for pairs without curvature information (kept for later calls)."""
        query = list(gradients)
        alphas = []
        for steps, changes, rho in reversed(self.history):
            alpha = rho * pair_dot(steps, query)
            query = [q - per_pair(alpha, q) * y for q, y in zip(query, changes)]
            alphas.append(alpha)
        if first_scale is not None:
            self.fallback = first_scale.detach()
        if self.fallback is None:
            raise RuntimeError("the first direction needs first_scale")
        gamma = self.fallback if self.gamma is None else torch.where(self.gamma > 0, self.gamma, self.fallback)
        result = [per_pair(gamma, q) * q for q in self.scaled(query)]
        for (steps, changes, rho), alpha in zip(self.history, reversed(alphas)):
            beta = rho * pair_dot(changes, result)
            result = [r + per_pair(alpha - beta, r) * s for r, s in zip(result, steps)]
        return [-r for r in result]

    def remember(
        self,
        steps: list[torch.Tensor],
        changes: list[torch.Tensor],
        accepted: torch.Tensor,
        parameters: list[torch.Tensor],
    ) -> None:
        """Add the update ``s = theta_new - theta``, ``y = g_new - g`` of the ``accepted`` pairs, unless
        it is at rounding level (``|s| <= sqrt(eps) (1 + |theta|)``: its ``y`` is noise) or not convex."""
        self.count += 1
        curvature = pair_dot(steps, changes)
        size = pair_dot(steps, steps).sqrt()
        resolvable = size > torch.finfo(steps[0].dtype).eps ** 0.5 * (1 + pair_dot(parameters, parameters).sqrt())
        keep = accepted & resolvable & (curvature > 1e-10 * size * pair_dot(changes, changes).sqrt())
        if not bool(keep.any()):
            return
        squares = pair_dot(changes, self.scaled(changes))
        gamma = torch.where(keep, curvature / squares.clamp_min(torch.finfo(squares.dtype).tiny), 0.0)
        self.gamma = gamma if self.gamma is None else torch.where(keep, gamma, self.gamma)
        if self.memory == 0:
            return
        rho = torch.where(keep, 1.0 / curvature.where(keep, 1.0), 0.0)  # rho 0: no update for this pair
        self.history.append(([s.detach() for s in steps], [y.detach() for y in changes], rho.detach()))
        del self.history[: -self.memory]

    def scaled(self, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
        """``D t`` for each tensor (the diagonal of ``H0``; the identity without ``scaling``)."""
        return tensors if self.scaling is None else [d * t for d, t in zip(self.scaling, tensors)]

    def forget(self, pairs: torch.Tensor) -> None:
        """Drop the memory of ``pairs`` (their next direction is steepest descent)."""
        self.history = [(s, y, torch.where(pairs, 0.0, rho)) for s, y, rho in self.history]
        if self.gamma is not None:
            self.gamma = torch.where(pairs, 0.0, self.gamma)

    def finite(self) -> bool:
        """Whether the curvature memory is finite."""
        return self.gamma is None or bool(torch.isfinite(self.gamma).all())

    def fresh(self) -> torch.Tensor:
        """Per pair ``[B]`` bool: no curvature information (its next direction is the first-step one)."""
        if self.fallback is None:
            raise RuntimeError("fresh() before the first direction")
        fresh = torch.ones_like(self.fallback, dtype=torch.bool)
        if self.gamma is not None:
            fresh = fresh & (self.gamma <= 0)
        for _, _, rho in self.history:
            fresh = fresh & (rho == 0)
        return fresh

    def frozen_step(
        self, transform: "Transform", parameters: list[torch.Tensor], gradients: list[torch.Tensor]
    ) -> list[torch.Tensor]:
        """One full quasi-Newton step from ``parameters`` with the memory held fixed (for ``jfb``)."""
        return [p + d for p, d in zip(parameters, self.direction(gradients))]


def lbfgs() -> QuasiNewton:
    return QuasiNewton(memory=10)


def gradient_descent() -> QuasiNewton:
    return QuasiNewton(memory=0)


#: ``adam``: scaled Adam steps of the transform (FireANTs'); ``lbfgs``, ``gd``: line-search descent
#: on the energy as written (see ``optimize.py``)
OPTIMIZERS: dict[str, Callable[[], Adam | QuasiNewton]] = {"adam": Adam, "lbfgs": lbfgs, "gd": gradient_descent}
