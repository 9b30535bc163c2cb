"""The multi-scale solver loop and the ``register`` entry point on tensors."""
from __future__ import annotations

import time
from typing import Callable, Sequence

import torch

from .checks import check_number
from .filters import antialiased_resize
from .frames import make_frames
from .modes import outside_inference_mode
from .objective import Objective, Prompt
from .optimizers import Adam, GradientDescent
from .regularizers import get_regularizer
from .result import RegistrationResult
from .similarity import Similarity, make_similarity
from .spatial import batch_affine, nan_marker
from .transforms import Transform, make_transform

#: ``callback(scale_index, iteration, energies [B])`` after every iteration.
Callback = Callable[[int, int, torch.Tensor], None]

MIN_SIZE = 4


def scale_shape(shape: Sequence[int], factor: float) -> tuple[int, ...]:
    """Spatial shape of the level downsampled by ``factor`` (at least ``MIN_SIZE`` voxels an axis)."""
    return tuple(max(int(round(n / factor)), min(MIN_SIZE, n)) for n in shape)


def downsample(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Gaussian anti-aliasing (sigma ``factor / 2`` voxels) then linear resize by ``1 / factor``."""
    if factor <= 1:
        return image
    return antialiased_resize(image, scale_shape(image.shape[2:], factor))


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


def solve_scale(transform: Transform, fixed: torch.Tensor, moving: torch.Tensor, objective: Objective,
                iterations: int, tolerance: float = 1e-6, patience: int = 10,
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


def _check_inputs(fixed: torch.Tensor, moving: torch.Tensor, scales: Sequence[float],
                  iterations: Sequence[int]) -> None:
    for name, image in (("fixed", fixed), ("moving", moving)):
        if not isinstance(image, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor [B, C, *S], got {type(image).__name__}")
        if image.dim() not in (4, 5):
            raise ValueError(f"{name} must be [B, C, H, W] (2D) or [B, C, D, H, W] (3D), "
                             f"got shape {tuple(image.shape)}")
        if image.numel() == 0:
            raise ValueError(f"{name} is empty: shape {tuple(image.shape)}")
        if not torch.isfinite(image).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    if fixed.dim() != moving.dim():
        raise ValueError(f"fixed is {fixed.dim() - 2}D but moving is {moving.dim() - 2}D")
    if fixed.shape[:2] != moving.shape[:2]:
        raise ValueError(f"fixed and moving need the same batch size and channels, got "
                         f"{tuple(fixed.shape[:2])} and {tuple(moving.shape[:2])}")
    if len(scales) != len(iterations) or not scales:
        raise ValueError(f"give one iteration count per scale: scales {list(scales)}, "
                         f"iterations {list(iterations)}")
    if any(s <= 0 for s in scales) or any(a < b for a, b in zip(scales, scales[1:])):
        raise ValueError(f"scales must be positive and coarse to fine (e.g. 4 2 1), got {list(scales)}")
    if any(i < 0 for i in iterations):
        raise ValueError(f"iterations must be >= 0, got {list(iterations)}")


def normalize_intensities(image: torch.Tensor, low: float = 0.005, high: float = 0.995) -> torch.Tensor:
    """Map each pair's channel from its ``[low, high]`` quantiles to ``[0, 1]`` (clipped)."""
    flat = image.flatten(2)
    stride = max(flat.shape[-1] // 2**20, 1)
    quantiles = torch.quantile(flat[..., ::stride].float(), torch.tensor([low, high], device=image.device),
                               dim=-1)
    shape = image.shape[:2] + (1,) * (image.dim() - 2)
    lower, upper = quantiles[0].view(shape), quantiles[1].view(shape)
    return ((image - lower) / (upper - lower).clamp_min(1e-8)).clamp(0, 1)


@outside_inference_mode
def register(fixed: torch.Tensor, moving: torch.Tensor, transform: str | Transform = "greedy",
             similarity: str | Similarity = "lncc", scales: Sequence[float] = (4, 2, 1),
             iterations: Sequence[int] = (200, 100, 50), *,
             fixed_affine: torch.Tensor | None = None, moving_affine: torch.Tensor | None = None,
             init: RegistrationResult | torch.Tensor | None = None,
             regularizer: str | None = None, regularizer_weight: float = 0.0,
             prompts: Sequence[Prompt] = (), tolerance: float = 1e-6, patience: int = 10,
             normalize: bool = True, transform_options: dict | None = None, similarity_options: dict | None = None,
             callback: Callback | None = None) -> RegistrationResult:
    """Register ``B`` pairs of images, each independently.

    Args:
        fixed, moving: ``[B, C, *S]`` float tensors, 2D or 3D; spatial shapes may differ.
        transform: ``rigid``, ``affine``, ``freeform``, ``greedy``, ``svf``, ``bspline`` or an instance.
        similarity: ``mse``, ``lncc``, ``ncc``, ``cosine``, ``mi`` or an instance.
        scales: downsampling factors, coarse to fine; ``iterations``: one count per scale.
        fixed_affine, moving_affine: voxel-to-world ``[B or 1, d+1, d+1]`` (NIfTI affines, mm);
            they give the initial alignment. Without them the fields of view coincide.
        init: an earlier (rigid/affine) result or matrix ``[B, d+1, d+1]`` (fixed normalized ->
            moving normalized) to start from: affine then deformable, as in ANTs.
        regularizer, regularizer_weight: explicit penalty (``diffusion``, ``bending``) and its weight.
        prompts: label-fidelity terms (:class:`Prompt`, masks at full resolution) added to the energy.
        tolerance, patience: early stop of a pair on relative energy change over ``patience`` steps.
        normalize: map intensities to ``[0, 1]`` by robust quantiles first (for raw images).
        callback: called after every iteration with ``(scale_index, iteration, energies)``.
    """
    scales, iterations = list(scales), [int(i) for i in iterations]
    _check_inputs(fixed, moving, scales, iterations)
    check_number("tolerance", tolerance, 0)
    transform = make_transform(transform, **(transform_options or {}))
    similarity = make_similarity(similarity, **(similarity_options or {}))
    if not similarity.multichannel and fixed.shape[1] != 1:
        raise ValueError(f"similarity {similarity.name!r} needs single-channel images, got {fixed.shape[1]}")
    start = time.perf_counter()
    batch, dims = fixed.shape[0], fixed.dim() - 2
    fixed, moving = fixed.float(), moving.float()
    if normalize:
        fixed, moving = normalize_intensities(fixed), normalize_intensities(moving)
    frames = make_frames(fixed.shape[2:], moving.shape[2:], batch,
                         batch_affine(fixed_affine, batch, dims), batch_affine(moving_affine, batch, dims),
                         device=fixed.device)
    init_matrix = init.matrix if isinstance(init, RegistrationResult) else init
    transform.setup(frames, batch, fixed.shape[2:], init_matrix)
    objective = Objective(similarity, get_regularizer(regularizer, regularizer_weight), regularizer_weight,
                          list(prompts))
    trace = []
    for index, (factor, count) in enumerate(zip(scales, iterations)):
        fixed_level, moving_level = downsample(fixed, factor), downsample(moving, factor)
        transform.start_scale(fixed_level.shape[2:])
        trace.append(solve_scale(transform, fixed_level, moving_level,
                                 objective.at_shapes(fixed_level.shape[2:], moving_level.shape[2:]),
                                 count, tolerance, patience, callback, index))
    transform.start_scale(fixed.shape[2:])
    with torch.no_grad():
        grid = transform.grid()
        matrix = transform.matrix().detach()
    return RegistrationResult(grid=grid, matrix=matrix, frames=frames, moving_shape=tuple(moving.shape[2:]),
                              transform=transform, loss_trace=trace, seconds=time.perf_counter() - start)
