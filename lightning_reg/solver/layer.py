"""``RegistrationLayer``: the multi-scale solver as a differentiable layer on feature pyramids."""
from __future__ import annotations

import copy
import time
from dataclasses import replace
from typing import Sequence

import torch

from .checks import check_number
from .frames import Frames, make_frames
from .implicit import BackwardSettings, ImplicitSolution, ScaleProblem
from .modes import outside_inference_mode
from .objective import Objective, Prompt
from .optimize import downsample, solve_scale
from .optimizers import OPTIMIZERS
from .regularizers import get_regularizer
from .result import RegistrationResult
from .similarity import make_similarity
from .spatial import batch_affine, rescaled_affine
from .transforms import Transform, make_transform

BACKWARD_MODES = ("jfb", "ift", "unroll")


class RegistrationLayer(torch.nn.Module):
    """Features in, the solver's optimal warp out, gradients back to the features.

    Each pyramid level is its own problem: the solver minimizes the energy of ``objective.py`` on
    that level's features, starting (as a constant) from the previous level's answer.

    Args:
        transform, transform_options: representation (``rigid``, ``affine``, ``freeform``,
            ``greedy``, ``svf``, ``bspline``) and its options (``learning_rate`` in voxels, ...).
        similarity, similarity_options: ``mse``, ``lncc``, ``ncc``, ``cosine`` (``mi``: one channel).
        scales: downsampling factor of each level, coarse to fine. With a one-level pyramid and
            several scales the layer builds the pyramid itself (Gaussian, like ``register``).
            ``None``: one scale per pyramid level.
        iterations: solver iterations per level (one number for all).
        backward: ``jfb`` (default), ``ift`` or ``unroll``; see ``implicit.py``.
        jfb_steps: differentiable solver steps of ``jfb``.
        cg_iterations, cg_tolerance, damping: conjugate gradient of ``ift``; ``damping`` is relative
            to the curvature along the upstream gradient.
        regularizer, regularizer_weight: explicit penalty (``diffusion``, ``bending``) and its weight.
        optimizer: ``adam`` (the solver's scaled Adam) or ``gd`` (plain gradient steps, whose
            unrolled derivative is meaningful; Adam's is not, see ``optimize.GradientDescent``).
        tolerance, patience: early stop of a pair on relative energy change (0 runs every iteration).
    """

    def __init__(self, transform: str = "freeform", similarity: str = "mse",
                 scales: Sequence[float] | None = None, iterations: int | Sequence[int] = (200, 100, 20),
                 backward: str = "jfb", jfb_steps: int = 1, cg_iterations: int = 20,
                 cg_tolerance: float = 1e-4, damping: float = 1e-3, regularizer: str | None = None,
                 regularizer_weight: float = 0.0, optimizer: str = "adam", tolerance: float = 1e-6,
                 patience: int = 10, transform_options: dict | None = None,
                 similarity_options: dict | None = None) -> None:
        super().__init__()
        if backward not in BACKWARD_MODES:
            raise ValueError(f"unknown backward mode {backward!r}; choose one of {', '.join(BACKWARD_MODES)}")
        if jfb_steps < 1 or cg_iterations < 1:
            raise ValueError(f"jfb_steps and cg_iterations must be >= 1, got {jfb_steps} and {cg_iterations}")
        check_number("damping", damping, 0)
        check_number("tolerance", tolerance, 0)
        if scales is not None and (not scales or any(s <= 0 for s in scales)
                                   or any(a < b for a, b in zip(scales, scales[1:]))):
            raise ValueError(f"scales must be positive and coarse to fine (e.g. 4 2 1), got {list(scales)}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        self.optimizer = optimizer
        self.transform_name = transform
        self.transform_options = dict(transform_options or {})
        make_transform(transform, **self.transform_options)  # unknown names and options fail here
        self.similarity = make_similarity(similarity, **(similarity_options or {}))
        self.regularizer = get_regularizer(regularizer, regularizer_weight)
        self.regularizer_weight = float(regularizer_weight)
        self.scales = None if scales is None else [float(s) for s in scales]
        self.iterations = iterations
        self.settings = BackwardSettings(backward, int(jfb_steps), int(cg_iterations), float(cg_tolerance),
                                         float(damping))
        self.tolerance = float(tolerance)
        self.patience = int(patience)

    def extra_repr(self) -> str:
        return (f"transform={self.transform_name!r}, similarity={self.similarity.name!r}, "
                f"scales={self.scales}, iterations={self.iterations}, backward={self.settings.mode!r}")

    @outside_inference_mode
    def forward(self, fixed_features: Sequence[torch.Tensor], moving_features: Sequence[torch.Tensor], *,
                fixed_affine: torch.Tensor | None = None, moving_affine: torch.Tensor | None = None,
                prompts: Sequence[Prompt] = (),
                init: RegistrationResult | torch.Tensor | None = None) -> list[RegistrationResult]:
        """Register ``B`` pairs; one :class:`RegistrationResult` per level, coarse to fine.

        Args:
            fixed_features, moving_features: one ``[B, C_s, *S_s]`` tensor per level, coarse to fine;
                fixed and moving may differ in spatial size, not in channels.
            fixed_affine, moving_affine: voxel-to-world ``[B or 1, d+1, d+1]`` of the finest level's
                grids (the images' NIfTI affines when the finest features are at image resolution);
                coarser levels span the same field of view.
            prompts: label-fidelity terms (masks at any resolution; resampled to every level).
            init: an affine result or matrix ``[B, d+1, d+1]`` to start from.

        Each result's ``grid`` is on its level's fixed grid and differentiable with respect to both
        pyramids; ``result.resized(image_shape)`` brings it to the image's resolution.
        """
        levels = self._levels(fixed_features, moving_features)
        iterations = self._iterations(len(levels))
        fixed_finest, moving_finest = levels[-1]
        batch, dims = fixed_finest.shape[0], fixed_finest.dim() - 2
        fixed_shape, moving_shape = fixed_finest.shape[2:], moving_finest.shape[2:]
        device = fixed_finest.device
        frames = make_frames(fixed_shape, moving_shape, batch, _affine(fixed_affine, batch, dims, device),
                             _affine(moving_affine, batch, dims, device), device=device)
        transform = make_transform(self.transform_name, **self.transform_options)
        init_matrix = init.matrix if isinstance(init, RegistrationResult) else init
        transform.setup(frames, batch, fixed_shape, init_matrix)
        _check_prompts(prompts, batch, dims)
        objective = Objective(self.similarity, self.regularizer, self.regularizer_weight, list(prompts))
        start = time.perf_counter()
        results = []
        for index, ((fixed, moving), count) in enumerate(zip(levels, iterations)):
            transform.start_scale(fixed.shape[2:])
            level_objective = objective.at_shapes(fixed.shape[2:], moving.shape[2:])
            trace, solved = self._solve_level(transform, fixed, moving, level_objective, count, index)
            level_frames = _level_frames(frames, fixed_shape, fixed.shape[2:])
            results.append(RegistrationResult(
                grid=solved.grid(), matrix=solved.matrix().detach(), frames=level_frames,
                moving_shape=tuple(moving_shape), transform=solved, loss_trace=[trace],
                seconds=time.perf_counter() - start))
        return results

    def _solve_level(self, transform: Transform, fixed: torch.Tensor, moving: torch.Tensor,
                     objective: Objective, iterations: int, index: int) -> tuple[torch.Tensor, Transform]:
        """Solve one level; returns the energy trace and a snapshot of the transform whose parameters
        carry the gradient path chosen by the backward mode."""
        attached = torch.is_grad_enabled() and (fixed.requires_grad or moving.requires_grad)
        unroll = attached and self.settings.mode == "unroll"
        if not unroll:
            fixed_input, moving_input = fixed, moving
            fixed, moving = fixed.detach(), moving.detach()
        optimizer = OPTIMIZERS[self.optimizer]()
        trace = solve_scale(transform, fixed, moving, objective, iterations, self.tolerance, self.patience,
                            scale_index=index, optimizer=optimizer, differentiable=unroll)
        solved = copy.copy(transform)
        if attached and not unroll and optimizer.count > 0:
            problem = ScaleProblem(copy.copy(transform), objective, optimizer.pair_scales(), self.settings)
            parameters = [p.detach() for p in transform.parameters()]
            solved.set_parameters(list(ImplicitSolution.apply(problem, fixed_input, moving_input, *parameters)))
        elif not unroll:  # nothing solved here depends on the features (or no gradient is wanted)
            solved.set_parameters([p.detach() for p in transform.parameters()])
        return trace, solved

    def _iterations(self, count: int) -> list[int]:
        if isinstance(self.iterations, int):
            return [self.iterations] * count
        iterations = [int(i) for i in self.iterations]
        if len(iterations) != count or any(i < 0 for i in iterations):
            raise ValueError(f"give one iteration count (>= 0) per pyramid level: {count} levels, "
                             f"iterations {iterations}")
        return iterations

    def _levels(self, fixed_features, moving_features) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Validated ``(fixed, moving)`` per level, coarse to fine."""
        fixed_features, moving_features = _as_pyramid(fixed_features, "fixed"), _as_pyramid(moving_features, "moving")
        if len(fixed_features) != len(moving_features):
            raise ValueError(f"fixed_features has {len(fixed_features)} levels but moving_features has "
                             f"{len(moving_features)}; give one tensor per scale in both")
        for name, pyramid in (("fixed", fixed_features), ("moving", moving_features)):
            _check_pyramid(pyramid, name)
        for index, (fixed, moving) in enumerate(zip(fixed_features, moving_features)):
            if fixed.dim() != moving.dim() or fixed.shape[:2] != moving.shape[:2]:
                raise ValueError(f"level {index}: fixed features {tuple(fixed.shape)} and moving features "
                                 f"{tuple(moving.shape)} need the same dimensionality, batch size and channels")
            if not self.similarity.multichannel and fixed.shape[1] != 1:
                raise ValueError(f"similarity {self.similarity.name!r} needs one channel, level {index} "
                                 f"has {fixed.shape[1]}")
        levels = list(zip(fixed_features, moving_features))
        if self.scales is None or len(self.scales) == len(levels):
            return levels
        if len(levels) == 1:
            fixed, moving = levels[0]
            return [(downsample(fixed, factor), downsample(moving, factor)) for factor in self.scales]
        raise ValueError(f"the pyramids have {len(levels)} levels but scales has {len(self.scales)}: give "
                         f"one level per scale, or one full-resolution level to downsample")


def _as_pyramid(features, name: str) -> list[torch.Tensor]:
    if isinstance(features, torch.Tensor) or not isinstance(features, (list, tuple)) or not features:
        raise TypeError(f"{name}_features must be a non-empty list of tensors [B, C, *S], one per scale")
    for index, level in enumerate(features):
        if not isinstance(level, torch.Tensor):
            raise TypeError(f"{name}_features[{index}] must be a tensor, got {type(level).__name__}")
    return list(features)


def _check_pyramid(pyramid: list[torch.Tensor], name: str) -> None:
    dims = pyramid[0].dim()
    for index, level in enumerate(pyramid):
        if level.dim() not in (4, 5) or level.dim() != dims:
            raise ValueError(f"{name}_features[{index}] has shape {tuple(level.shape)}; every level must be "
                             f"[B, C, H, W] (2D) or [B, C, D, H, W] (3D), the same for all levels")
        if level.numel() == 0:
            raise ValueError(f"{name}_features[{index}] is empty: shape {tuple(level.shape)}")
        if not torch.isfinite(level).all():
            raise ValueError(f"{name}_features[{index}] contains NaN or infinite values; check the feature "
                             f"network's inputs and its training (learning rate, normalization)")
        if index and any(n < p for n, p in zip(level.shape[2:], pyramid[index - 1].shape[2:])):
            raise ValueError(f"{name}_features[{index}] {tuple(level.shape[2:])} is coarser than level {index - 1} "
                             f"{tuple(pyramid[index - 1].shape[2:])}: give the pyramid coarse to fine")


def _check_prompts(prompts: Sequence[Prompt], batch: int, dims: int) -> None:
    for index, prompt in enumerate(prompts):
        if not isinstance(prompt, Prompt):
            raise TypeError(f"prompts[{index}] must be a Prompt (see solver.label_prompt), got {type(prompt).__name__}")
        if prompt.fixed.dim() != dims + 2 or prompt.fixed.shape[0] not in (1, batch):
            raise ValueError(f"prompts[{index}] masks {tuple(prompt.fixed.shape)} do not fit {batch} pair(s) of "
                             f"{dims}D features: give [B, K, *S] masks")


def _affine(affine: torch.Tensor | None, batch: int, dims: int, device) -> torch.Tensor | None:
    affine = batch_affine(affine, batch, dims)
    return None if affine is None else affine.to(device)


def _level_frames(frames: Frames, finest_shape: Sequence[int], level_shape: Sequence[int]) -> Frames:
    """The finest level's frames with the fixed affine of a coarser grid over the same field of view."""
    return replace(frames, fixed_affine=rescaled_affine(frames.fixed_affine, finest_shape, level_shape))
