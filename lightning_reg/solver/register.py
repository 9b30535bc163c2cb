"""``register``: classical registration of images, a thin face over :class:`RegistrationLayer`
(normalize, solve the one-level pyramid without gradients, evaluate the answer at full resolution)."""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import torch

from .checks import as_pyramid, check_pyramids
from .defaults import CLASSICAL
from .layer import RegistrationLayer
from .modes import outside_inference_mode
from .objective import Masks, Prompt
from .optimize import Callback
from .result import RegistrationResult
from .similarity import Similarity
from .transforms import Transform


def normalize_intensities(image: torch.Tensor, low: float = 0.005, high: float = 0.995) -> torch.Tensor:
    """Map each pair's channel from its ``[low, high]`` quantiles to ``[0, 1]`` (clipped)."""
    flat = image.flatten(2)
    stride = max(flat.shape[-1] // 2**20, 1)
    quantiles = torch.quantile(flat[..., ::stride].float(), torch.tensor([low, high], device=image.device), dim=-1)
    shape = image.shape[:2] + (1,) * (image.dim() - 2)
    lower, upper = quantiles[0].view(shape), quantiles[1].view(shape)
    return ((image - lower) / (upper - lower).clamp_min(1e-8)).clamp(0, 1)


@outside_inference_mode
def register(
    fixed: torch.Tensor,
    moving: torch.Tensor,
    transform: str | Transform = CLASSICAL.transform,
    similarity: str | Similarity = CLASSICAL.similarity,
    scales: Sequence[float] = CLASSICAL.scales,
    iterations: int | Sequence[int] = CLASSICAL.iterations,
    *,
    fixed_affine: torch.Tensor | None = None,
    moving_affine: torch.Tensor | None = None,
    init: RegistrationResult | torch.Tensor | None = None,
    regularizer: str | None = None,
    regularizer_weight: float = 0.0,
    prompts: Sequence[Prompt] = (),
    fixed_mask: torch.Tensor | None = None,
    moving_mask: torch.Tensor | None = None,
    tolerance: float = CLASSICAL.tolerance,
    patience: int = CLASSICAL.patience,
    optimizer: str = CLASSICAL.optimizer,
    interpolation: str | None = CLASSICAL.interpolation,
    normalize: bool = True,
    transform_options: dict | None = None,
    similarity_options: dict | None = None,
    callback: Callback | None = None,
) -> RegistrationResult:
    """Register ``B`` pairs of images, each independently.

    Args:
        fixed, moving: ``[B, C, *S]`` float tensors, 2D or 3D; spatial shapes may differ.
        transform: ``rigid``, ``affine``, ``freeform``, ``greedy``, ``svf``, ``bspline``, a linear
            one then a deformable one (``affine+greedy``, as ANTs), or a :class:`Transform`.
        similarity: ``mse``, ``lncc``, ``ncc``, ``cosine``, ``mi`` or an instance.
        scales: downsampling factors, coarse to fine; ``iterations``: one count per scale (or one for all).
        fixed_affine, moving_affine: voxel-to-world ``[B or 1, d+1, d+1]`` (NIfTI affines, mm);
            they give the initial alignment. Without them the fields of view coincide.
        init: an earlier (rigid/affine) result or matrix ``[B, d+1, d+1]`` (fixed normalized ->
            moving normalized) to start from.
        regularizer, regularizer_weight: explicit penalty (``diffusion``, ``bending``) and its weight.
        prompts: label-fidelity terms (:class:`Prompt`, masks at full resolution) added to the energy.
        fixed_mask, moving_mask: ``[B or 1, 1, *S]`` cost-function masks (1 inside): the similarity
            counts only fixed voxels inside ``fixed_mask`` mapped inside ``moving_mask`` (a lesion, a
            field-of-view edge left out), as ANTs' ``-x``.
        tolerance, patience: early stop of a pair: stationarity at most ``tolerance``, or its energy
            averaged over ``patience`` iterations no longer falling (``optimize.py``).
        optimizer: ``adam`` (bounded, smoothed steps, as FireANTs'), ``lbfgs`` (per-pair L-BFGS with
            a line search, to a true minimum of the energy) or ``gd`` (see ``RegistrationLayer``).
        interpolation: of the moving image inside the energy, ``linear`` or ``cubic`` (B-spline);
            ``None``: cubic with ``lbfgs`` and ``gd``, linear with ``adam``.
        normalize: map intensities to ``[0, 1]`` by robust quantiles first (for raw images).
        callback: called after every iteration with ``(scale_index, iteration, energies)``.

    Returns the final result on the fixed image's full-resolution grid (the transform evaluated
    there, not the finest level's warp interpolated) with the energies of every scale in ``loss_trace``.
    """
    layer = RegistrationLayer(
        transform,
        similarity,
        scales,
        iterations,
        regularizer=regularizer,
        regularizer_weight=regularizer_weight,
        tolerance=tolerance,
        patience=patience,
        optimizer=optimizer,
        interpolation=interpolation,
        transform_options=transform_options,
        similarity_options=similarity_options,
    )
    # before normalization, which would hide NaNs and fail on empty images
    check_pyramids(as_pyramid([fixed], "fixed"), as_pyramid([moving], "moving"))
    fixed, moving = fixed.float(), moving.float()
    if normalize:
        fixed, moving = normalize_intensities(fixed), normalize_intensities(moving)
    with torch.no_grad():
        masks = None if fixed_mask is None and moving_mask is None else Masks(fixed_mask, moving_mask)
        results = layer(
            [fixed],
            [moving],
            fixed_affine=fixed_affine,
            moving_affine=moving_affine,
            prompts=prompts,
            masks=masks,
            init=init,
            callback=callback,
        )
    final = results[-1].evaluated_at(fixed.shape[2:])
    return replace(final, loss_trace=[trace for result in results for trace in result.loss_trace])
