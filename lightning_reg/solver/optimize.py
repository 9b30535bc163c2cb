"""The solver at one scale: iterate until each pair stops (``layer.py`` loops over the scales)."""
from __future__ import annotations

import copy
from typing import Callable

import torch

from .objective import Objective
from .optimizers import Adam, GradientDescent
from .spatial import nan_marker
from .transforms import Transform

#: ``callback(scale_index, iteration, energies [B])`` after every iteration.
Callback = Callable[[int, int, torch.Tensor], None]


def step_directions(transform: Transform, fixed: torch.Tensor, moving: torch.Tensor, objective: Objective,
                    optimizer: Adam | GradientDescent,
                    differentiable: bool = False) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Energies ``[B]`` at the transform's current parameters and the optimizer's step directions.

    ``differentiable`` keeps the graph of the gradients (for the unrolled backward mode).
    """
    with torch.enable_grad():
        values = objective(transform, fixed, moving)
        gradients = torch.autograd.grad(values.sum(), transform.parameters(), create_graph=differentiable)
    optimizer.observe(values.detach())
    return values.detach(), optimizer.direction(transform.prepare_gradients(list(gradients)))


def gradient_norm(transform: Transform, fixed: torch.Tensor, moving: torch.Tensor,
                  objective: Objective) -> torch.Tensor:
    """Per pair ``[B]``: the norm of the energy's gradient with respect to the transform's parameters
    where they are now (all parameter tensors together; before any smoothing or preconditioning).
    Evaluated on a detached snapshot, so neither the optimizer nor any graph is touched."""
    probe = copy.copy(transform)
    probe.set_parameters([parameter.detach().requires_grad_(True) for parameter in transform.parameters()])
    with torch.enable_grad():
        values = objective(probe, fixed.detach(), moving.detach())
        gradients = torch.autograd.grad(values.sum(), probe.parameters(), allow_unused=True)
    squares = [g.detach().double().pow(2).flatten(1).sum(1) for g in gradients if g is not None]
    return sum(squares).sqrt() if squares else torch.zeros(fixed.shape[0], dtype=torch.float64, device=fixed.device)


def solve_scale(transform: Transform, fixed: torch.Tensor, moving: torch.Tensor, objective: Objective,
                iterations: int, tolerance: float, patience: int,
                callback: Callback | None = None, scale_index: int = 0, optimizer: Adam | GradientDescent | None = None,
                differentiable: bool = False) -> torch.Tensor:
    """Run ``iterations`` steps at one scale; each pair stops on its own when its energy has changed
    by less than ``tolerance`` (relative) over ``patience`` iterations. Returns energies ``[n, B]``.

    ``transform.start_scale`` must have been called for this scale. With ``differentiable`` the
    parameters keep the graph of every step (memory grows with the iterations).
    """
    optimizer = Adam() if optimizer is None else optimizer
    active = torch.ones(fixed.shape[0], dtype=torch.bool, device=fixed.device)
    trace: list[torch.Tensor] = []
    for iteration in range(iterations):
        values, directions = step_directions(transform, fixed, moving, objective, optimizer, differentiable)
        trace.append(values)
        if callback is not None:
            callback(scale_index, iteration, values)
        if tolerance > 0 and iteration >= patience:
            before = trace[-1 - patience]
            change = (before - values) / before.abs().clamp_min(1e-12)
            active = active & (change >= tolerance)
            if not bool(active.any()):
                break
        if differentiable:
            transform.set_parameters(transform.stepped(directions, active))
        else:
            with torch.no_grad():
                parameters = transform.stepped(directions, active)
            transform.set_parameters([parameter.requires_grad_(True) for parameter in parameters])
    if not trace:
        return torch.zeros(0, fixed.shape[0], device=fixed.device)
    # sampling cleans non-finite coordinates (spatial.bounded_grid), so a diverged pair's energies
    # look finite: its last one is made NaN here, once per scale rather than every iteration
    trace[-1] = trace[-1] + sum(nan_marker(parameter) for parameter in transform.parameters())
    return torch.stack(trace)
