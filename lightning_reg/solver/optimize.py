"""The multi-scale solver loop and the ``register`` entry point on tensors."""
from __future__ import annotations

import time
from typing import Callable, Sequence

import torch

from .filters import gaussian_smooth
from .frames import make_frames
from .regularizers import get_regularizer
from .result import RegistrationResult
from .similarity import Similarity, make_similarity
from .spatial import batch_affine, resize, sample
from .transforms import Transform, make_transform

#: ``callback(scale_index, iteration, energies [B])`` after every iteration.
Callback = Callable[[int, int, torch.Tensor], None]

MIN_SIZE = 4


class Adam:
    """Adam moments per parameter tensor; ``direction`` gives the bias-corrected step direction.

    Written here rather than taken from ``torch.optim`` because the step length is not Adam's:
    each transform scales the direction itself (to a fraction of a voxel, per pair).
    """

    def __init__(self, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.betas = betas
        self.eps = eps
        self.count = 0
        self.first: list[torch.Tensor] = []
        self.second: list[torch.Tensor] = []

    def direction(self, gradients: list[torch.Tensor]) -> list[torch.Tensor]:
        beta1, beta2 = self.betas
        if not self.first or any(m.shape != g.shape for m, g in zip(self.first, gradients)):
            self.first = [torch.zeros_like(g) for g in gradients]
            self.second = [torch.zeros_like(g) for g in gradients]
            self.count = 0
        self.count += 1
        directions = []
        for first, second, gradient in zip(self.first, self.second, gradients):
            first.mul_(beta1).add_(gradient, alpha=1 - beta1)
            second.mul_(beta2).addcmul_(gradient, gradient, value=1 - beta2)
            corrected_second = (second / (1 - beta2 ** self.count)).sqrt_().add_(self.eps)
            directions.append(first / (1 - beta1 ** self.count) / corrected_second)
        return directions


def scale_shape(shape: Sequence[int], factor: float) -> tuple[int, ...]:
    """Spatial shape of the level downsampled by ``factor`` (at least ``MIN_SIZE`` voxels an axis)."""
    return tuple(max(int(round(n / factor)), min(MIN_SIZE, n)) for n in shape)


def downsample(image: torch.Tensor, factor: float) -> torch.Tensor:
    """Gaussian anti-aliasing (sigma ``factor / 2`` voxels) then linear resize by ``1 / factor``."""
    if factor <= 1:
        return image
    return resize(gaussian_smooth(image, 0.5 * factor), scale_shape(image.shape[2:], factor))


def energy(transform: Transform, fixed: torch.Tensor, moving: torch.Tensor, similarity: Similarity,
           regularizer=None, regularizer_weight: float = 0.0) -> torch.Tensor:
    """Per-pair energy ``[B]``: dissimilarity of fixed and warped moving, plus the weighted penalty."""
    warped = sample(moving, transform.grid())
    value = similarity(fixed, warped)
    if regularizer is not None and regularizer_weight > 0:
        field = transform.regularized_field()
        if field is not None:
            value = value + regularizer_weight * regularizer(field)
    return value


def solve_scale(transform: Transform, fixed: torch.Tensor, moving: torch.Tensor, similarity: Similarity,
                iterations: int, regularizer=None, regularizer_weight: float = 0.0,
                tolerance: float = 1e-6, patience: int = 10, callback: Callback | None = None,
                scale_index: int = 0) -> torch.Tensor:
    """Run ``iterations`` steps at one scale; each pair stops on its own when its energy has changed
    by less than ``tolerance`` (relative) over ``patience`` iterations. Returns energies ``[n, B]``.
    """
    transform.start_scale(fixed.shape[2:])
    adam = Adam()
    active = torch.ones(fixed.shape[0], dtype=torch.bool, device=fixed.device)
    trace: list[torch.Tensor] = []
    for iteration in range(iterations):
        with torch.enable_grad():
            values = energy(transform, fixed, moving, similarity, regularizer, regularizer_weight)
            gradients = torch.autograd.grad(values.sum(), transform.parameters())
        trace.append(values.detach())
        if callback is not None:
            callback(scale_index, iteration, trace[-1])
        if tolerance > 0 and iteration >= patience:
            before = trace[-1 - patience]
            change = (before - trace[-1]) / before.abs().clamp_min(1e-12)
            active = active & (change >= tolerance)
            if not bool(active.any()):
                break
        directions = adam.direction(transform.prepare_gradients(list(gradients)))
        transform.update(directions, active)
    if not trace:
        return torch.zeros(0, fixed.shape[0], device=fixed.device)
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


def register(fixed: torch.Tensor, moving: torch.Tensor, transform: str | Transform = "greedy",
             similarity: str | Similarity = "lncc", scales: Sequence[float] = (4, 2, 1),
             iterations: Sequence[int] = (200, 100, 50), *,
             fixed_affine: torch.Tensor | None = None, moving_affine: torch.Tensor | None = None,
             init: RegistrationResult | torch.Tensor | None = None,
             regularizer: str | None = None, regularizer_weight: float = 0.0,
             tolerance: float = 1e-6, patience: int = 10, normalize: bool = True,
             transform_options: dict | None = None, similarity_options: dict | None = None,
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
        tolerance, patience: early stop of a pair on relative energy change over ``patience`` steps.
        normalize: map intensities to ``[0, 1]`` by robust quantiles first (for raw images).
        callback: called after every iteration with ``(scale_index, iteration, energies)``.
    """
    scales, iterations = list(scales), [int(i) for i in iterations]
    _check_inputs(fixed, moving, scales, iterations)
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
    penalty = get_regularizer(regularizer)
    trace = []
    for index, (factor, count) in enumerate(zip(scales, iterations)):
        trace.append(solve_scale(transform, downsample(fixed, factor), downsample(moving, factor), similarity,
                                 count, penalty, regularizer_weight, tolerance, patience, callback, index))
    transform.start_scale(fixed.shape[2:])
    with torch.no_grad():
        grid = transform.grid().detach()
        matrix = transform.matrix().detach()
    return RegistrationResult(grid=grid, matrix=matrix, frames=frames, moving_shape=tuple(moving.shape[2:]),
                              transform=transform, loss_trace=trace, seconds=time.perf_counter() - start)
