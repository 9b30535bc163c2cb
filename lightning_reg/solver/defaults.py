"""The solver's defaults, each written once: classical registration of images (``register``,
``lightning-reg register``) and the learned layer (``RegistrationLayer``, ``SolverSettings``,
``lightning-reg fit``). An option of one transform or similarity (its step size, smoothing, the
lncc window) is the default of that class's constructor."""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Defaults:
    """transform and similarity names; iterations per level, coarse to fine; scales (downsampling
    factors, coarse to fine; ``None``: the levels given); tolerance (stationarity that stops a pair,
    with ``patience`` iterations of averaging for the no-longer-falling rule; 0 runs every
    iteration; see ``optimize.py``); optimizer (``adam``, ``lbfgs``, ``gd``) and interpolation of
    the moving features (``linear``, ``cubic``; ``None``: :func:`interpolation_for` the optimizer)."""

    transform: str
    similarity: str
    iterations: tuple[int, ...]
    scales: tuple[float, ...] | None
    tolerance: float
    patience: int = 10
    optimizer: str = "adam"
    interpolation: str | None = None


#: raw intensities, as ANTs' SyN: greedy diffeomorphic, local NCC, three levels
CLASSICAL = Defaults(transform="greedy", similarity="lncc", iterations=(200, 100, 50), scales=(4, 2, 1), tolerance=1e-6)
#: ``lightning-reg register --preset fast``: the classical defaults with fewer iterations, chosen on
#: the validation pairs (``benchmarks/pareto.py --pairs-from validation``, 6 pairs, 1 thread, 3D 2 mm):
#: mean Dice 0.526 at 5.2 s/pair against the defaults' 0.536 at 15.5 s (100/50/10: 0.529 at 5.8 s;
#: 25/12/5: 0.503 at 2.8 s)
FAST = replace(CLASSICAL, iterations=(50, 25, 10))
#: the classical presets by name (``--preset``)
PRESETS = {"default": CLASSICAL, "fast": FAST}
#: learned features: local NCC on the features (on the synthetic default, 2 epochs, test Dice 0.750
#: against 0.656 with mse; README "Train features"), few iterations a level (30/15/10: 0.750 at a
#: quarter of 100/50/20's solve), every pair running every iteration, so a batch's steps are alike
LEARNED = Defaults(transform="freeform", similarity="lncc", iterations=(30, 15, 10), scales=None, tolerance=0.0)


def interpolation_for(optimizer: str, interpolation: str | None = None) -> str:
    """``interpolation``, or by default the one the optimizer needs: ``cubic`` for the line-search
    optimizers (they converge only on a twice differentiable energy: with linear interpolation the
    gradient jumps between voxels and the line search stalls), ``linear`` for Adam (cheaper, and its
    bounded steps do not mind)."""
    if interpolation is not None:
        return interpolation
    return "linear" if optimizer == "adam" else "cubic"
