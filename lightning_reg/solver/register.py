"""``register``: classical registration of images, a thin face over :class:`RegistrationLayer`
(normalize, solve the one-level pyramid without gradients, evaluate the answer at full resolution)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Sequence

import torch

from .checks import as_pyramid, check_pyramids
from .defaults import CLASSICAL
from .energy.objective import Masks, Prompt
from .geometry.transforms import Transform
from .layer import RegistrationLayer
from .loop.optimize import Callback
from .modes import outside_inference_mode
from .options import SolverOptions, solver_options
from .result import RegistrationResult


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
    options: SolverOptions | str | Transform | None = None,
    *positional: Any,
    fixed_affine: torch.Tensor | None = None,
    moving_affine: torch.Tensor | None = None,
    init: RegistrationResult | torch.Tensor | None = None,
    prompts: Sequence[Prompt] = (),
    fixed_mask: torch.Tensor | None = None,
    moving_mask: torch.Tensor | None = None,
    normalize: bool = True,
    callback: Callback | None = None,
    **changes: Any,
) -> RegistrationResult:
    """Register ``B`` pairs of images, each independently.

    Args:
        fixed: ``[B, C, *S]`` float tensor, 2D or 3D.
        moving: ``[B, C, *S']``, the same channels; the spatial shape may differ.
        options: the solver's settings (:class:`SolverOptions`); default ``CLASSICAL`` (greedy,
            lncc, scales 4 2 1, 200/100/50 iterations); ``FAST`` for a third of the time.
        fixed_affine: voxel-to-world ``[B or 1, d+1, d+1]`` of the fixed image (its NIfTI affine,
            mm); with ``moving_affine`` it gives the initial alignment. Without them the fields of
            view coincide.
        moving_affine: the moving image's voxel-to-world ``[B or 1, d+1, d+1]``.
        init: an earlier (rigid/affine) result or matrix ``[B, d+1, d+1]`` (fixed normalized ->
            moving normalized) to start from.
        prompts: label-fidelity terms (:class:`Prompt`, masks at full resolution) added to the energy.
        fixed_mask: ``[B or 1, 1, *S]`` cost-function mask (1 inside): the similarity counts only
            fixed voxels inside it mapped inside ``moving_mask`` (a lesion, a field-of-view edge
            left out), as ANTs' ``-x``.
        moving_mask: ``[B or 1, 1, *S']``, the moving image's.
        normalize: map intensities to ``[0, 1]`` by robust quantiles first (for raw images).
        callback: called after every iteration with ``(scale_index, iteration, energies)``.
        changes: options changed from ``options`` by name (``register(f, m, transform="svf")``);
            the leading positional options of 0.2 (transform, similarity, scales, iterations) are
            still read.

    Returns the final result on the fixed image's full-resolution grid (the transform evaluated
    there, not the finest level's warp interpolated) with the energies of every scale in ``loss_trace``.
    """
    layer = RegistrationLayer(solver_options(CLASSICAL, options, positional, changes))
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
