"""``RegistrationLayer``: the multi-scale solver as a differentiable layer on feature pyramids; the
one loop over scales, which ``register`` (``register.py``) runs on images."""

from __future__ import annotations

import copy
import inspect
import time
from dataclasses import asdict, replace
from typing import Any, Sequence

import torch

from .channels import principal_pyramids
from .checks import as_pyramid, check_pyramids, level_iterations
from .defaults import LEARNED, interpolation_for
from .energy.objective import Masks, Objective, Prompt
from .energy.regularizers import get_regularizer
from .energy.similarity import make_similarity
from .geometry.frames import Frames, make_frames
from .geometry.interpolation import SAMPLE_MODES
from .geometry.pyramid import solver_levels
from .geometry.spatial import batch_affine, rescaled_affine
from .geometry.transforms import Transform, make_transform
from .loop.implicit import BackwardSettings, ImplicitSolution, ScaleProblem
from .loop.optimize import Callback, gradient_norm, solve_scale
from .loop.optimizers import OPTIMIZERS
from .modes import outside_inference_mode
from .options import SolverOptions, solver_options
from .result import RegistrationResult


class RegistrationLayer(torch.nn.Module):
    """Features in, the solver's optimal warp out, gradients back to the features.

    Each pyramid level is its own problem: the solver minimizes the energy of ``objective.py`` on
    that level's features, starting (as a constant) from the previous level's answer. A linear
    stage (``options.linear``) is solved first, without gradients, and the deformable transform
    starts from it.

    Args:
        options: every setting of the solver (:class:`SolverOptions`); default ``LEARNED``.
        changes: options changed from those by name (``RegistrationLayer(transform="svf")``, or
            ``backward="ift"``); the layer's leading positional arguments of 0.2 (transform,
            similarity, scales, iterations) are still read.
    """

    def __init__(
        self, options: SolverOptions | str | Transform | None = None, *positional: Any, **changes: Any
    ) -> None:
        super().__init__()
        self.options = solver_options(LEARNED, options, positional, changes)
        self.interpolation = interpolation_for(self.options.optimizer, self.options.interpolation)
        # one instance for every call: LNCC keeps the fixed image's moments while it returns
        self.similarity = make_similarity(self.options.similarity, **self.options.similarity_options)
        self.regularizer = get_regularizer(self.options.regularizer, self.options.regularizer_weight)

    @property
    def settings(self) -> BackwardSettings:
        """How gradients reach the features (``options.backward``)."""
        return self.options.backward_settings

    def extra_repr(self) -> str:
        options = self.options
        return (
            f"transform={options.plan!r}, similarity={self.similarity.name!r}, "
            f"scales={options.scales}, iterations={options.iterations}, backward={options.backward_settings.mode!r}, "
            f"optimizer={options.optimizer!r}, interpolation={self.interpolation!r}"
        )

    def describe(self) -> dict:
        """Every setting this layer solves with, the defaults of its transforms and similarity filled
        in (what a result file records): plain JSON values."""
        options = self.options
        described = {
            "transform": options.plan,
            "transform_options": _constructor_settings(options.make_transform()),
            "similarity": self.similarity.name,
            "similarity_options": _constructor_settings(self.similarity),
            "regularizer": None if self.regularizer is None else options.regularizer,
            "regularizer_weight": options.regularizer_weight,
            "optimizer": options.optimizer,
            "interpolation": self.interpolation,
            "scales": None if options.scales is None else list(options.scales),
            "iterations": options.iterations if isinstance(options.iterations, int) else list(options.iterations),
            "tolerance": options.tolerance,
            "patience": options.patience,
            "backward": asdict(options.backward_settings),
            "feature_channels": options.feature_channels,
            "prompt_labels": list(options.prompt_labels),
            "prompt_weight": options.prompt_weight,
        }
        if options.linear is not None:
            described["init_options"] = _constructor_settings(make_transform(options.linear))
        return described

    @outside_inference_mode
    def forward(
        self,
        fixed_features: Sequence[torch.Tensor],
        moving_features: Sequence[torch.Tensor],
        *,
        feature_scales: Sequence[float] | None = None,
        levels: int | None = None,
        fixed_affine: torch.Tensor | None = None,
        moving_affine: torch.Tensor | None = None,
        prompts: Sequence[Prompt] = (),
        masks: Masks | None = None,
        init: RegistrationResult | torch.Tensor | None = None,
        callback: Callback | None = None,
    ) -> list[RegistrationResult]:
        """Register ``B`` pairs; one :class:`RegistrationResult` per solver level, coarse to fine.

        Args:
            fixed_features: one ``[B, C_s, *S_s]`` tensor per level, coarse to fine.
            moving_features: the same for the moving image; its spatial sizes may differ, not its
                channels.
            feature_scales: the downsampling factor of each given level (a network's ``scales``).
                With the layer's ``scales``, each solver level is made from the finest given level
                at least as coarse, smoothed down further where needed. Left out: the given levels
                are at the layer's scales, or one given level is at full resolution (scale 1).
            levels: solve only the first (coarsest) ``levels`` solver levels.
            fixed_affine: voxel-to-world ``[B or 1, d+1, d+1]`` of the finest given fixed level's
                grid (the image's NIfTI affine when it is at image resolution); every level spans
                the same field of view.
            moving_affine: the same for the moving pyramid.
            prompts: label-fidelity terms (masks at any resolution; resampled to every level).
            masks: cost-function masks (:class:`Masks`, any resolution; resampled to every level).
            init: an affine result or matrix ``[B, d+1, d+1]`` to start from (instead of the
                linear stage of a plan such as ``affine+svf``).
            callback: called after every iteration with ``(scale_index, iteration, energies)``.

        Each result's ``grid`` is on its level's fixed grid and differentiable with respect to both
        pyramids; ``result.resized(image_shape)`` brings it to the image's resolution.
        """
        fixed_given, moving_given = as_pyramid(fixed_features, "fixed"), as_pyramid(moving_features, "moving")
        check_pyramids(fixed_given, moving_given)
        if self.options.feature_channels is not None:
            fixed_given, moving_given = principal_pyramids((fixed_given, moving_given), self.options.feature_channels)
        if not self.similarity.multichannel and fixed_given[0].shape[1] != 1:
            raise ValueError(
                f"similarity {self.similarity.name!r} needs one channel, the features have {fixed_given[0].shape[1]}"
            )
        pairs = self._solver_levels(fixed_given, moving_given, feature_scales)
        iterations = level_iterations(self.options.iterations, len(pairs))[:levels]
        pairs = pairs[:levels]
        batch, dims = fixed_given[-1].shape[0], fixed_given[-1].dim() - 2
        reference, moving_shape = fixed_given[-1].shape[2:], moving_given[-1].shape[2:]
        device = fixed_given[-1].device
        frames = make_frames(
            reference,
            moving_shape,
            batch,
            _affine(fixed_affine, batch, dims, device),
            _affine(moving_affine, batch, dims, device),
            device=device,
        )
        _check_prompts(prompts, batch, dims)
        _check_masks(masks, batch, dims)
        objective = Objective(
            self.similarity, self.regularizer, self.options.regularizer_weight, list(prompts), self.interpolation, masks
        )
        start = time.perf_counter()
        if init is None and self.options.linear is not None:
            with torch.no_grad():  # the deformable stage starts from its matrix as a constant
                linear = make_transform(self.options.linear)
                init = self._solve(
                    linear,
                    pairs,
                    iterations,
                    frames,
                    reference,
                    moving_shape,
                    Objective(self.similarity, prompts=list(prompts), interpolation=self.interpolation, masks=masks),
                    None,
                    callback,
                    start,
                )[-1]
        transform = self.options.make_transform()
        return self._solve(
            transform, pairs, iterations, frames, reference, moving_shape, objective, init, callback, start
        )

    def _solver_levels(
        self, fixed: list[torch.Tensor], moving: list[torch.Tensor], feature_scales: Sequence[float] | None
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``(fixed, moving)`` of every solver level, coarse to fine."""
        scales = self.options.scales
        if scales is None:
            return list(zip(fixed, moving))
        if feature_scales is None:
            if len(fixed) not in (1, len(scales)):
                raise ValueError(
                    f"the pyramids have {len(fixed)} levels but scales has {len(scales)}: give "
                    f"one level per scale, one full-resolution level to downsample, or feature_scales"
                )
            feature_scales = scales if len(fixed) == len(scales) else [1.0]
        if len(feature_scales) != len(fixed):
            raise ValueError(
                f"feature_scales {list(feature_scales)} name {len(feature_scales)} levels but the "
                f"pyramids have {len(fixed)}"
            )
        return list(zip(solver_levels(fixed, feature_scales, scales), solver_levels(moving, feature_scales, scales)))

    def _solve(
        self,
        transform: Transform,
        pairs: list[tuple[torch.Tensor, torch.Tensor]],
        iterations: list[int],
        frames: Frames,
        reference: Sequence[int],
        moving_shape: Sequence[int],
        objective: Objective,
        init: RegistrationResult | torch.Tensor | None,
        callback: Callback | None,
        start: float,
    ) -> list[RegistrationResult]:
        """Solve ``transform`` at every level in turn, each starting from the one before; ``frames``
        belong to the fixed grid of shape ``reference``."""
        init_matrix = init.matrix if isinstance(init, RegistrationResult) else init
        transform.interpolation = SAMPLE_MODES[objective.interpolation]
        transform.setup(frames, frames.fixed_affine.shape[0], reference, init_matrix)
        results = []
        for index, ((fixed, moving), count) in enumerate(zip(pairs, iterations)):
            transform.start_scale(fixed.shape[2:])
            level_objective = objective.at_shapes(fixed.shape[2:], moving.shape[2:])
            trace, solved, initial = self._solve_level(
                transform, fixed, moving, level_objective, count, index, callback
            )
            final = gradient_norm(transform, fixed, moving, level_objective)
            initial = final if initial is None else initial  # no iteration ran: nothing moved
            results.append(
                RegistrationResult(
                    grid=solved.grid(),
                    matrix=solved.matrix().detach(),
                    frames=_level_frames(frames, reference, fixed.shape[2:]),
                    moving_shape=tuple(moving_shape),
                    transform=solved,
                    loss_trace=[trace],
                    seconds=time.perf_counter() - start,
                    stationarity=torch.where(initial > 0, final / initial.clamp_min(1e-300), 0.0),
                )
            )
        return results

    def _solve_level(
        self,
        transform: Transform,
        fixed: torch.Tensor,
        moving: torch.Tensor,
        objective: Objective,
        iterations: int,
        index: int,
        callback: Callback | None,
    ) -> tuple[torch.Tensor, Transform, torch.Tensor | None]:
        """Solve one level; returns the energy trace, a snapshot of the transform whose parameters
        carry the gradient path chosen by the backward mode, and the gradient norm per pair where
        the solver started (None when it ran no iteration)."""
        attached = torch.is_grad_enabled() and (fixed.requires_grad or moving.requires_grad)
        unroll = attached and self.settings.mode in ("unroll", "truncated")
        if not unroll:
            fixed_input, moving_input = fixed, moving
            fixed, moving = fixed.detach(), moving.detach()
        optimizer = OPTIMIZERS[self.options.optimizer]()
        trace = solve_scale(
            transform,
            fixed,
            moving,
            objective,
            iterations,
            self.options.tolerance,
            self.options.patience,
            callback=callback,
            scale_index=index,
            optimizer=optimizer,
            differentiable=unroll,
            graph_steps=self.settings.truncated_steps if unroll and self.settings.mode == "truncated" else None,
        )
        solved = copy.copy(transform)
        if attached and not unroll and (optimizer.count > 0 or self.settings.mode == "ift"):
            problem = ScaleProblem(copy.copy(transform), objective, optimizer, self.settings)
            parameters = [p.detach() for p in transform.parameters()]
            solved.set_parameters(list(ImplicitSolution.apply(problem, fixed_input, moving_input, *parameters)))
        elif not unroll:  # nothing solved here depends on the features (or no gradient is wanted)
            solved.set_parameters([p.detach() for p in transform.parameters()])
        return trace, solved, optimizer.initial_norm


def _check_prompts(prompts: Sequence[Prompt], batch: int, dims: int) -> None:
    for index, prompt in enumerate(prompts):
        if not isinstance(prompt, Prompt):
            raise TypeError(f"prompts[{index}] must be a Prompt (see solver.label_prompt), got {type(prompt).__name__}")
        if prompt.fixed.dim() != dims + 2 or prompt.fixed.shape[0] not in (1, batch):
            raise ValueError(
                f"prompts[{index}] masks {tuple(prompt.fixed.shape)} do not fit {batch} pair(s) of "
                f"{dims}D features: give [B, K, *S] masks"
            )


def _check_masks(masks: Masks | None, batch: int, dims: int) -> None:
    if masks is None:
        return
    if not isinstance(masks, Masks):
        raise TypeError(f"masks must be solver.Masks, got {type(masks).__name__}")
    for name, mask in (("fixed", masks.fixed), ("moving", masks.moving)):
        if mask is not None and (mask.dim() != dims + 2 or mask.shape[1] != 1 or mask.shape[0] not in (1, batch)):
            raise ValueError(
                f"the {name} mask {tuple(mask.shape)} does not fit {batch} pair(s) of {dims}D images: give [B, 1, *S]"
            )
        if mask is not None and not bool(mask.float().amax() > 0):
            raise ValueError(f"the {name} mask is empty (no voxel inside it): nothing would be compared")


def _affine(affine: torch.Tensor | None, batch: int, dims: int, device) -> torch.Tensor | None:
    affine = batch_affine(affine, batch, dims)
    return None if affine is None else affine.to(device)


def _level_frames(frames: Frames, reference: Sequence[int], level_shape: Sequence[int]) -> Frames:
    """``frames`` of the ``reference`` grid with the fixed affine of a coarser grid over the same field of view."""
    return replace(frames, fixed_affine=rescaled_affine(frames.fixed_affine, reference, level_shape))


def _constructor_settings(instance) -> dict:
    """The arguments of ``instance``'s constructor as the instance holds them (its defaults included)."""
    parameters = inspect.signature(type(instance).__init__).parameters.values()
    return {
        parameter.name: getattr(instance, parameter.name, parameter.default)
        for parameter in parameters
        if parameter.name != "self" and parameter.kind not in (parameter.VAR_POSITIONAL, parameter.VAR_KEYWORD)
    }
