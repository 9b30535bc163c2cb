"""The rule for the solver's numeric settings: a finite number within its range (NaN compares false
with every bound, so ``value <= 0`` alone lets it through)."""
from __future__ import annotations

import math


def check_number(name: str, value: float, minimum: float | None = None, strict: bool = False) -> float:
    """``value`` as a float; ValueError unless it is finite and ``>= minimum`` (``> minimum`` if ``strict``)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if minimum is not None and (number <= minimum if strict else number < minimum):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {minimum:g}, got {value}")
    return number
