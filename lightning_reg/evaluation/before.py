"""The figures of a pair before registration: its label maps as the images' headers alone align them."""

from __future__ import annotations

from typing import Sequence

import torch

from ..solver import RegistrationResult
from .metrics import dice_per_label, hd95


def labels_before(
    fixed_seg: torch.Tensor,
    moving_seg: torch.Tensor,
    header: RegistrationResult | None,
    label_mode: str,
    spacing: Sequence[float],
    with_hd95: bool = True,
) -> dict:
    """Mean Dice and HD95 (mm; ``None`` without ``with_hd95``) of ``fixed_seg`` against ``moving_seg``
    (``[1, 1, *S]``) taken onto the fixed grid by ``header`` (``RegistrationResult.from_headers``;
    ``None``: both maps on one grid, compared voxel for voxel)."""
    warped = moving_seg if header is None else header.warp_labels(moving_seg, mode=label_mode).cpu()
    scores = dice_per_label(fixed_seg, warped)
    return {
        "dice": sum(scores.values()) / max(len(scores), 1),
        "hd95": hd95(fixed_seg, warped, spacing=spacing) if with_hd95 else None,
    }
