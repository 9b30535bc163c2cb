"""Step directions for the solver: Adam (the default) and plain gradient descent (the reference
whose unrolled derivative is meaningful). Both see the energies (``observe``) and the gradients
(``direction``) and give the frozen per-pair step scales Jacobian-free backprop uses."""
from __future__ import annotations

import torch


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
        self.first: list[torch.Tensor] = []
        self.second: list[torch.Tensor] = []

    def observe(self, energies: torch.Tensor) -> None:
        """Adam ignores the energies (its steps are bounded by the transform)."""

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
        return [m / (1 - beta1 ** self.count) / self._root(v) for m, v in zip(self.first, self.second)]

    def _root(self, second: torch.Tensor) -> torch.Tensor:
        # the clamp keeps sqrt's derivative finite where a gradient is exactly zero
        return (second / (1 - self.betas[1] ** self.count)).clamp_min(1e-30).sqrt() + self.eps

    def pair_scales(self) -> list[torch.Tensor]:
        """Per tensor, one frozen scalar per pair ``1 / RMS(sqrt(v_hat))`` shaped to broadcast:
        the preconditioner of a step taken with the moments held fixed (Jacobian-free backprop)."""
        if not self.second:
            raise RuntimeError("Adam has taken no step yet")
        return [(_pair_rms(second.detach().sqrt()) + self.eps).reciprocal()
                * (1 - self.betas[1] ** self.count) ** 0.5 for second in self.second]


class GradientDescent:
    """Plain gradient steps: the direction is the gradient times one constant per pair and
    parameter tensor, first the inverse of the largest entry of the scale's first gradient (so the
    first step moves ``learning_rate``), halved for a pair whenever its energy rises beyond rounding
    (so the steps settle below the stability limit of the curvature).

    Its steps are a smooth map of the parameters, so derivatives through many of them converge to
    the implicit derivative (the ``unroll`` reference); Adam's normalization makes them chaotic.
    """

    def __init__(self) -> None:
        self.count = 0
        self.scales: list[torch.Tensor] = []
        self.last: torch.Tensor | None = None

    def observe(self, energies: torch.Tensor) -> None:
        if self.last is not None and self.scales:
            noise = 100 * torch.finfo(energies.dtype).eps * self.last.abs()
            halve = torch.where(energies > self.last + noise, 0.5, 1.0)
            self.scales = [scale * halve.view(-1, *([1] * (scale.dim() - 1))) for scale in self.scales]
        self.last = energies

    def direction(self, gradients: list[torch.Tensor]) -> list[torch.Tensor]:
        if not self.scales or any(s.dim() != g.dim() for s, g in zip(self.scales, gradients)):
            self.scales = [_pair_max(g.detach()).clamp_min(1e-30).reciprocal() for g in gradients]
        self.count += 1
        return [scale * gradient for scale, gradient in zip(self.scales, gradients)]

    def pair_scales(self) -> list[torch.Tensor]:
        if not self.scales:
            raise RuntimeError("gradient descent has taken no step yet")
        return self.scales


def _pair_max(tensor: torch.Tensor) -> torch.Tensor:
    """Largest absolute entry per pair of ``[B, ...]``, shaped ``[B, 1, ...]`` to broadcast."""
    return tensor.abs().flatten(1).amax(1).view(-1, *([1] * (tensor.dim() - 1)))


def _pair_rms(tensor: torch.Tensor) -> torch.Tensor:
    """Root mean square per pair of ``[B, ...]``, shaped ``[B, 1, ...]`` to broadcast."""
    return tensor.pow(2).flatten(1).mean(1).sqrt().view(-1, *([1] * (tensor.dim() - 1)))


OPTIMIZERS = {"adam": Adam, "gd": GradientDescent}
