"""Helpers the tests import (conftest.py files are for fixtures only)."""
from __future__ import annotations

import torch


def mean_dice(fixed_seg: torch.Tensor, warped_seg: torch.Tensor) -> float:
    from lightning_reg.metrics import dice_per_label

    scores = dice_per_label(fixed_seg, warped_seg)
    return sum(scores.values()) / len(scores)
