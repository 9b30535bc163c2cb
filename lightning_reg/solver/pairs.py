"""Per-pair reductions of batched tensors ``[B, ...]``: every pair of a batch is its own problem."""

from __future__ import annotations

from typing import cast

import torch


def per_pair(values: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``values`` ``[B]`` shaped ``[B, 1, ...]`` to broadcast against ``like``."""
    return values.view(-1, *([1] * (like.dim() - 1)))


def pair_dot(first: list[torch.Tensor], second: list[torch.Tensor]) -> torch.Tensor:
    """Inner product per pair ``[B]`` of two lists of ``[B, ...]`` tensors."""
    return cast(torch.Tensor, sum((a * b).flatten(1).sum(1) for a, b in zip(first, second)))


def pair_norm(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Euclidean norm per pair ``[B]`` (float64) of a list of ``[B, ...]`` tensors taken together."""
    return cast(torch.Tensor, sum(t.detach().double().pow(2).flatten(1).sum(1) for t in tensors)).sqrt()


def pair_max(tensors: list[torch.Tensor]) -> torch.Tensor:
    """Largest absolute entry per pair ``[B]`` of a list of ``[B, ...]`` tensors taken together."""
    return torch.stack([t.detach().abs().flatten(1).amax(1) for t in tensors]).amax(0)


def pair_rms(tensor: torch.Tensor) -> torch.Tensor:
    """Root mean square per pair of ``[B, ...]``, shaped ``[B, 1, ...]`` to broadcast."""
    return per_pair(tensor.pow(2).flatten(1).mean(1).sqrt(), tensor)
