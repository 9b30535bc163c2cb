"""The solver's defaults, each written once: classical registration of images (``register``,
``lightning-reg register``) and the learned layer (``RegistrationLayer``, ``SolverSettings``,
``lightning-reg fit``). An option of one transform or similarity (its step size, smoothing, the
lncc window) is the default of that class's constructor."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Defaults:
    """transform and similarity names; iterations per level, coarse to fine; scales (downsampling
    factors, coarse to fine; ``None``: the levels given); tolerance (relative energy change over
    ``patience`` iterations that stops a pair; 0 runs every iteration)."""

    transform: str
    similarity: str
    iterations: tuple[int, ...]
    scales: tuple[float, ...] | None
    tolerance: float
    patience: int = 10


#: raw intensities, as ANTs' SyN: greedy diffeomorphic, local NCC, three levels
CLASSICAL = Defaults(transform="greedy", similarity="lncc", iterations=(200, 100, 50), scales=(4, 2, 1),
                     tolerance=1e-6)
#: learned features: the network makes the similarity easy (mse) and every pair runs every iteration,
#: so the training steps of a batch are alike
LEARNED = Defaults(transform="freeform", similarity="mse", iterations=(100, 50, 20), scales=None, tolerance=0.0)
