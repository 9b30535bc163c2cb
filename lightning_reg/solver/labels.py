"""Integer label maps as indices into their sorted values and as one-hot channels."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def label_values(*maps: torch.Tensor, background: bool = True) -> torch.Tensor:
    """The sorted label values ``[K]`` of all ``maps`` (with ``background``: 0 among them, present or not)."""
    extra = [maps[0].new_zeros(1).long()] if background else []
    return torch.unique(torch.cat([m.long().flatten() for m in maps] + extra))


def label_index(labels: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """Each voxel's position in ``values`` (same shape as ``labels``); an index, unlike the value
    itself, is exact in float32 (which holds integers exactly only below 2^24)."""
    return torch.searchsorted(values, labels.long().contiguous())


def one_hot(labels: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """A label map ``[B, 1, *S]`` as float channels ``[B, K, *S]``, one per entry of ``values``."""
    return F.one_hot(label_index(labels, values)[:, 0], values.numel()).movedim(-1, 1).float()
