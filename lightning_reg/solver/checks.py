"""The solver's rules for its inputs and settings, each written once and called wherever the rule
applies (the solver, the layer, the solver settings of the module, the command line)."""

from __future__ import annotations

import math
from typing import Sequence

import torch


def check_number(name: str, value: float, minimum: float | None = None, strict: bool = False) -> float:
    """``value`` as a float; ValueError unless it is finite and ``>= minimum`` (``> minimum`` if
    ``strict``). NaN compares false with every bound, so ``value <= 0`` alone lets it through."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if minimum is not None and (number <= minimum if strict else number < minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum:g}, got {value}")
    return number


def check_scales(scales: Sequence[float]) -> list[float]:
    """Downsampling factors as floats: at least one, each positive, coarse to fine (e.g. 4 2 1)."""
    values = [check_number("a scale", scale) for scale in scales]
    if not values or any(s <= 0 for s in values) or any(a < b for a, b in zip(values, values[1:])):
        raise ValueError(f"scales must be positive and coarse to fine (e.g. 4 2 1), got {list(scales)}")
    return values


def level_iterations(iterations: int | Sequence[int], levels: int) -> list[int]:
    """One iteration count (>= 0) per pyramid level; a single number counts for every level."""
    given = [iterations] if isinstance(iterations, (int, float)) else list(iterations)
    counts = given * levels if len(given) == 1 else given
    if len(counts) != levels or any(int(count) != count or count < 0 for count in counts):
        raise ValueError(
            f"give one iteration count (>= 0) per level, or one for all: {levels} level(s), got iterations {given}"
        )
    return [int(count) for count in counts]


def as_pyramid(levels, name: str) -> list[torch.Tensor]:
    """``levels`` as a list of tensors; TypeError unless it is a non-empty list or tuple of tensors."""
    if isinstance(levels, torch.Tensor) or not isinstance(levels, (list, tuple)) or not levels:
        raise TypeError(f"{name}_features must be a non-empty list of tensors [B, C, *S], one per scale")
    for index, level in enumerate(levels):
        if not isinstance(level, torch.Tensor):
            raise TypeError(f"{name}_features[{index}] must be a tensor, got {type(level).__name__}")
    return list(levels)


def check_pyramids(fixed: Sequence[torch.Tensor], moving: Sequence[torch.Tensor]) -> None:
    """Images (one level each) or feature pyramids (coarse to fine) of ``B`` pairs: 2D or 3D, the
    same in every level, finite, not empty; fixed and moving alike in levels, batch and channels
    (not in spatial size)."""
    if len(fixed) != len(moving):
        raise ValueError(
            f"fixed has {len(fixed)} levels but moving has {len(moving)}; give one tensor per scale in both"
        )
    for name, pyramid in (("fixed", fixed), ("moving", moving)):
        for index in range(len(pyramid)):
            _check_level(pyramid, index, name if len(pyramid) == 1 else f"{name} level {index}")
    for index, (fixed_level, moving_level) in enumerate(zip(fixed, moving)):
        where = "" if len(fixed) == 1 else f"level {index}: "
        if fixed_level.dim() != moving_level.dim():
            raise ValueError(
                f"{where}fixed is {fixed_level.dim() - 2}D but moving is {moving_level.dim() - 2}D "
                f"(they need the same dimensionality)"
            )
        if fixed_level.shape[:2] != moving_level.shape[:2]:
            raise ValueError(
                f"{where}fixed and moving need the same batch size and channels, got "
                f"{tuple(fixed_level.shape[:2])} and {tuple(moving_level.shape[:2])}"
            )


def _check_level(pyramid: Sequence[torch.Tensor], index: int, label: str) -> None:
    level = pyramid[index]
    if level.dim() not in (4, 5) or level.dim() != pyramid[0].dim():
        raise ValueError(
            f"{label} has shape {tuple(level.shape)}; it must be [B, C, H, W] (2D) or "
            f"[B, C, D, H, W] (3D), the same in every level"
        )
    if level.numel() == 0:
        raise ValueError(f"{label} is empty: shape {tuple(level.shape)}")
    if not torch.isfinite(level).all():
        raise ValueError(
            f"{label} contains NaN or infinite values (features: check the network's inputs and "
            f"its training, e.g. the learning rate)"
        )
    if index and any(n < p for n, p in zip(level.shape[2:], pyramid[index - 1].shape[2:])):
        raise ValueError(
            f"{label} {tuple(level.shape[2:])} is coarser than level {index - 1} "
            f"{tuple(pyramid[index - 1].shape[2:])}: give the pyramid coarse to fine"
        )
