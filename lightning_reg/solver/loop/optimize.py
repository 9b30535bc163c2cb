"""The solver at one scale: iterate until each pair stops (``layer.py`` loops over the scales).

Two loops share the stopping rule. Adam takes the transform's own bounded steps (smoothed, and
compositive for greedy). The quasi-Newton optimizers (``lbfgs``, ``gd``) minimize the energy as
written: additive steps on the transform's parameters, each accepted only where it lowers the
pair's energy (Armijo backtracking), so the energy falls monotonically and a stop means a minimum.

A quasi-Newton pair also stops, whatever ``tolerance``, when no step lowers its energy by more
than rounding. Stopping, per pair, only when ``tolerance > 0``: the pair's stationarity (gradient norm over its
norm at the scale's start) is at most ``tolerance``; or its energy averaged over the last
``patience`` iterations is not below its average over the ``patience`` before (it has stopped
falling on average: Adam circling the minimum at its step size, a line search at rounding level).
A single rise, which Adam's oscillation makes, never stops a pair.
"""

from __future__ import annotations

import contextlib
import copy
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import torch

from ..energy.objective import Objective
from ..energy.similarity import first_order
from ..geometry.spatial import nan_marker
from ..geometry.transforms import Transform
from ..pairs import pair_dot, pair_max, pair_norm, per_pair
from .optimizers import Adam, QuasiNewton

#: ``callback(scale_index, iteration, energies [B])`` after every iteration.
Callback = Callable[[int, int, torch.Tensor], None]
#: Armijo's sufficient-decrease constant and the most halvings of one line search
ARMIJO = 1e-4
HALVINGS = 30


def energy_and_gradients(
    transform: Transform,
    parameters: list[torch.Tensor],
    fixed: torch.Tensor,
    moving: torch.Tensor,
    objective: Objective,
    differentiable: bool = False,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """Energies ``[B]`` and their gradients with respect to ``parameters`` (set on the transform).

    ``differentiable`` keeps the graph of the gradients (for the unrolled backward mode).
    """
    # without a graph of the gradients the similarity may take its hand-written first-order gradient
    with torch.enable_grad(), contextlib.nullcontext() if differentiable else first_order():
        parameters = [p if p.requires_grad else p.requires_grad_(True) for p in parameters]
        transform.set_parameters(parameters)
        values = objective(transform, fixed, moving)
        found = torch.autograd.grad(values.sum(), parameters, create_graph=differentiable, allow_unused=True)
    gradients = [torch.zeros_like(p) if g is None else g for g, p in zip(found, parameters)]
    return (values if differentiable else values.detach()), gradients


def gradient_norm(
    transform: Transform, fixed: torch.Tensor, moving: torch.Tensor, objective: Objective
) -> torch.Tensor:
    """Per pair ``[B]``: the norm of the energy's gradient with respect to the transform's parameters
    where they are now (all parameter tensors together; before any smoothing or preconditioning).
    Evaluated on a detached snapshot, so neither the optimizer nor any graph is touched."""
    probe = copy.copy(transform)
    parameters = [parameter.detach().requires_grad_(True) for parameter in transform.parameters()]
    if not parameters:
        return torch.zeros(fixed.shape[0], dtype=torch.float64, device=fixed.device)
    _, gradients = energy_and_gradients(probe, parameters, fixed.detach(), moving.detach(), objective)
    return pair_norm(gradients)


def keeps_going(
    trace: list[torch.Tensor], gradients: list[torch.Tensor], initial: torch.Tensor, tolerance: float, patience: int
) -> torch.Tensor:
    """Per pair ``[B]`` bool: not yet stationary to ``tolerance`` and still falling on average."""
    going = pair_norm(gradients) > tolerance * initial
    if len(trace) >= 2 * patience:
        recent = torch.stack(trace[-patience:]).mean(0)
        before = torch.stack(trace[-2 * patience : -patience]).mean(0)
        going = going & (recent < before)
    return going


@dataclass
class ScaleRun:
    """One scale's problem and how far to solve it: what both loops and the line search share."""

    transform: Transform
    fixed: torch.Tensor
    moving: torch.Tensor
    objective: Objective
    iterations: int
    tolerance: float
    patience: int
    callback: Callback | None
    scale_index: int
    differentiable: bool
    #: the first iteration whose graph is kept when ``differentiable`` (0: every one)
    graph_from: int = 0

    def energy(
        self, parameters: list[torch.Tensor], graph: bool | None = None
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Energies ``[B]`` and gradients at ``parameters`` (:func:`energy_and_gradients`); with
        ``graph`` False (default: ``differentiable``) on the features detached."""
        graph = self.differentiable if graph is None else graph
        fixed, moving = (self.fixed, self.moving) if graph else self.detached
        return energy_and_gradients(self.transform, parameters, fixed, moving, self.objective, graph)

    @cached_property
    def detached(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The features without their graph, made once a run: a new tensor each iteration missed the
        similarities' caches of the fixed side (LNCC's moments), 7-11 % of a classical solve."""
        return self.fixed.detach(), self.moving.detach()

    def report(self, iteration: int, energies: torch.Tensor) -> None:
        """Tell the callback, if any, where the run is."""
        if self.callback is not None:
            self.callback(self.scale_index, iteration, energies)


def solve_scale(
    transform: Transform,
    fixed: torch.Tensor,
    moving: torch.Tensor,
    objective: Objective,
    iterations: int,
    tolerance: float,
    patience: int,
    callback: Callback | None = None,
    scale_index: int = 0,
    optimizer: Adam | QuasiNewton | None = None,
    differentiable: bool = False,
    graph_steps: int | None = None,
) -> torch.Tensor:
    """Run up to ``iterations`` steps at one scale, each pair stopping on its own (module docstring).
    Returns the energies ``[n, B]`` at the start of every iteration run.

    ``transform.start_scale`` must have been called for this scale. With ``differentiable`` the
    parameters keep the graph of every step (memory grows with the iterations), or with
    ``graph_steps`` of the last ``graph_steps`` only (Adam: truncated back-propagation).
    """
    optimizer = Adam() if optimizer is None else optimizer
    graph_from = 0 if graph_steps is None else max(iterations - graph_steps, 0)
    if graph_steps is not None and not isinstance(optimizer, Adam):
        raise ValueError(
            "backward truncated keeps the graph of Adam's last steps: use optimizer adam (or backward unroll)"
        )
    run = ScaleRun(
        transform,
        fixed,
        moving,
        objective,
        iterations,
        tolerance,
        patience,
        callback,
        scale_index,
        differentiable,
        graph_from,
    )
    trace = _descend(run, optimizer) if isinstance(optimizer, QuasiNewton) else _adam(run, optimizer)
    if not trace:
        return torch.zeros(0, fixed.shape[0], device=fixed.device)
    # sampling cleans non-finite coordinates (spatial.bounded_grid), so a diverged pair's energies
    # look finite: its last one is made NaN here, once per scale rather than every iteration
    trace[-1] = trace[-1] + sum(nan_marker(parameter) for parameter in transform.parameters())
    return torch.stack(trace)


def _adam(run: ScaleRun, optimizer: Adam) -> list[torch.Tensor]:
    transform = run.transform
    active = torch.ones(run.fixed.shape[0], dtype=torch.bool, device=run.fixed.device)
    trace: list[torch.Tensor] = []
    initial = None
    for iteration in range(run.iterations):
        graph = run.differentiable and iteration >= run.graph_from
        values, gradients = run.energy(transform.parameters(), graph)
        trace.append(values.detach())
        if initial is None:
            initial = optimizer.initial_norm = pair_norm(gradients)
        run.report(iteration, trace[-1])
        if run.tolerance > 0:
            active = active & keeps_going(trace, gradients, initial, run.tolerance, run.patience)
            if not bool(active.any()):
                break
        directions = optimizer.direction(transform.prepare_gradients(gradients))
        if graph:
            transform.set_parameters(transform.stepped(directions, active))
        else:
            with torch.no_grad():
                parameters = transform.stepped(directions, active)
            transform.set_parameters([parameter.requires_grad_(True) for parameter in parameters])
    return trace


def _descend(run: ScaleRun, optimizer: QuasiNewton) -> list[torch.Tensor]:
    transform, differentiable = run.transform, run.differentiable
    active = torch.ones(run.fixed.shape[0], dtype=torch.bool, device=run.fixed.device)
    trace: list[torch.Tensor] = []
    parameters = transform.parameters()
    if not parameters:
        return trace
    values, gradients = run.energy(parameters)
    initial = optimizer.initial_norm = pair_norm(gradients)
    bound = transform.step_bound()
    optimizer.scaling = transform.preconditioner()
    for iteration in range(run.iterations):
        trace.append(values.detach())
        run.report(iteration, trace[-1])
        if run.tolerance > 0:
            active = active & keeps_going(trace, gradients, initial, run.tolerance, run.patience)
        active = active & (pair_max(gradients) > 0)
        if not bool(active.any()):
            break
        detached = [g.detach() for g in gradients]
        first_scale = bound / pair_max(optimizer.scaled(detached)).clamp_min(torch.finfo(detached[0].dtype).tiny)
        directions = optimizer.direction(gradients if differentiable else detached, first_scale.to(values.dtype))
        slope = pair_dot(detached, [d.detach() for d in directions])
        uphill = active & ~(slope < 0)
        if bool(uphill.any()):  # rounding made the quasi-Newton direction useless: steepest descent
            optimizer.forget(uphill)
            directions = optimizer.direction(gradients if differentiable else detached)
            slope = pair_dot(detached, [d.detach() for d in directions])
        accepted, (new_parameters, new_values, new_gradients) = _line_search(
            run, parameters, values, gradients, directions, slope, active
        )
        failed = active & ~accepted
        if bool(failed.any()):  # no decrease along this direction: retry steepest, or stop if it was
            stuck = failed & optimizer.fresh()
            active = active & ~stuck
            optimizer.forget(failed)
        optimizer.remember(
            [n.detach() - p.detach() for n, p in zip(new_parameters, parameters)],
            [n.detach() - g.detach() for n, g in zip(new_gradients, gradients)],
            accepted,
            [p.detach() for p in parameters],
        )
        # a decrease at rounding level: the energy is as low as this precision can tell
        rounding = 8 * torch.finfo(values.dtype).eps * values.detach().abs()
        active = active & ~(accepted & (values.detach() - new_values.detach() <= rounding))
        parameters, values, gradients = new_parameters, new_values, new_gradients
    transform.set_parameters(parameters if differentiable else [p.detach().requires_grad_(True) for p in parameters])
    return trace


def _line_search(
    run: ScaleRun,
    parameters: list[torch.Tensor],
    values: torch.Tensor,
    gradients: list[torch.Tensor],
    directions: list[torch.Tensor],
    slope: torch.Tensor,
    active: torch.Tensor,
) -> tuple[torch.Tensor, tuple]:
    """Backtracking from the full step: per pair, the first step length ``1, 1/2, 1/4, ...`` with
    ``E(theta + t d) <= E(theta) + ARMIJO t <g, d>``. Returns which pairs found one and the
    parameters, energies and gradients (the old ones for pairs that did not)."""
    if not run.differentiable:  # the trials are new leaves, not a graph growing over the iterations
        parameters, directions = [p.detach() for p in parameters], [d.detach() for d in directions]
    length = torch.ones_like(slope)
    pending = active.clone()
    accepted = torch.zeros_like(active)
    best = (list(parameters), values, list(gradients))
    for _ in range(HALVINGS):
        trial = [
            p + per_pair(torch.where(pending, length, 0.0).to(p.dtype), p) * d for p, d in zip(parameters, directions)
        ]
        trial_values, trial_gradients = run.energy(trial)
        good = (
            pending
            & torch.isfinite(trial_values)
            & (trial_values.detach() <= values.detach() + ARMIJO * length * slope)
        )
        best = tuple(_where(good, new, old) for new, old in zip((trial, trial_values, trial_gradients), best))
        accepted = accepted | good
        pending = pending & ~good
        if not bool(pending.any()):
            break
        length = torch.where(pending, 0.5 * length, length)
    return accepted, best


def _where(pairs: torch.Tensor, new, old):
    """``new`` for ``pairs``, ``old`` elsewhere: a ``[B]`` tensor or a list of ``[B, ...]`` tensors."""
    if isinstance(new, torch.Tensor):
        return torch.where(pairs, new, old)
    return [torch.where(per_pair(pairs, n), n, o) for n, o in zip(new, old)]
