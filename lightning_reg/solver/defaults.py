"""The solver's named defaults, each written once: classical registration of images (``register``,
``lightning-reg register``) and the learned layer (``RegistrationLayer``, ``SolverSettings``,
``lightning-reg fit``: :class:`SolverOptions`' own defaults). An option of one transform or
similarity (its step size, smoothing, the lncc window) is the default of that class's constructor."""

from __future__ import annotations

from .options import SolverOptions

#: learned features: local NCC on the features (on the synthetic default, 2 epochs, test Dice 0.750
#: against 0.656 with mse; README "Train features"), few iterations a level (30/15/10: 0.750 at a
#: quarter of 100/50/20's solve), every pair running every iteration, so a batch's steps are alike
LEARNED = SolverOptions()
#: raw intensities, as ANTs' SyN: greedy diffeomorphic, local NCC, three levels, early stop
CLASSICAL = SolverOptions(transform="greedy", scales=(4, 2, 1), iterations=(200, 100, 50), tolerance=1e-6)
#: ``lightning-reg register --preset fast``: the classical defaults with fewer iterations, chosen on
#: the validation pairs (``benchmarks/pareto.py --pairs-from validation``, 6 pairs, 1 thread, 3D 2 mm):
#: mean Dice 0.526 at 5.2 s/pair against the defaults' 0.536 at 15.5 s (100/50/10: 0.529 at 5.8 s;
#: 25/12/5: 0.503 at 2.8 s)
FAST = CLASSICAL.changed(iterations=(50, 25, 10))
#: the classical presets by name (``--preset``)
PRESETS = {"default": CLASSICAL, "fast": FAST}
#: the name of 0.2 (a dataclass of the defaults alone); removed in 0.5
Defaults = SolverOptions


def interpolation_for(optimizer: str, interpolation: str | None = None) -> str:
    """``interpolation``, or by default the one the optimizer needs: ``cubic`` for the line-search
    optimizers (they converge only on a twice differentiable energy: with linear interpolation the
    gradient jumps between voxels and the line search stalls), ``linear`` for Adam (cheaper, and its
    bounded steps do not mind)."""
    if interpolation is not None:
        return interpolation
    return "linear" if optimizer == "adam" else "cubic"
