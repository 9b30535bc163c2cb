"""Solver settings as a plain dataclass, so LightningCLI exposes every field (``--model.train_solver.transform``)."""
from __future__ import annotations

from dataclasses import dataclass, field

from .solver import RegistrationLayer


@dataclass
class SolverSettings:
    """How the implicit layer solves, for training or for evaluation.

    Args:
        transform: ``rigid``, ``affine``, ``freeform``, ``greedy``, ``svf``, ``bspline``.
        similarity: inside the solver, on features: ``mse``, ``lncc``, ``ncc``, ``cosine``.
        iterations: solver iterations per pyramid level, coarse to fine (one number: every level).
        backward: ``jfb``, ``ift`` or ``unroll`` (see ``solver/implicit.py``).
        learning_rate: largest step of one iteration, voxels of the level (deformable transforms).
        smooth_grad_sigma, smooth_warp_sigma: Gaussian sigmas (voxels of the level) of the gradient
            and of the field after each step (deformable transforms other than bspline).
        regularizer, regularizer_weight: explicit penalty (``diffusion``, ``bending``) and weight.
        tolerance: early stop on relative energy change over 10 iterations (0: run every iteration).
        transform_options: further options of the transform (e.g. ``control_spacing`` of bspline).
        prompt_labels, prompt_weight: label values whose masks in the fixed and moving label maps
            are added to the energy (a label-fidelity prompt), and its weight; none by default.
    """

    transform: str = "freeform"
    similarity: str = "mse"
    iterations: list[int] = field(default_factory=lambda: [100, 50, 20])
    backward: str = "jfb"
    learning_rate: float = 0.25
    smooth_grad_sigma: float = 1.0
    smooth_warp_sigma: float = 0.5
    regularizer: str | None = None
    regularizer_weight: float = 0.0
    tolerance: float = 0.0
    transform_options: dict = field(default_factory=dict)
    prompt_labels: list[int] = field(default_factory=list)
    prompt_weight: float = 1.0

    def layer(self, levels: int | None = None) -> RegistrationLayer:
        """The layer for the first ``levels`` pyramid levels (all by default); validates the settings."""
        iterations = list(self.iterations) if isinstance(self.iterations, (list, tuple)) else [int(self.iterations)]
        if levels is not None:
            iterations = (iterations * levels)[:levels] if len(iterations) == 1 else iterations[:levels]
        options = dict(self.transform_options)
        if self.transform in ("rigid", "affine"):
            options.setdefault("learning_rate", 1e-2)
        else:
            options.setdefault("learning_rate", self.learning_rate)
        if self.transform in ("freeform", "greedy", "svf"):
            options.setdefault("smooth_grad_sigma", self.smooth_grad_sigma)
            options.setdefault("smooth_warp_sigma", self.smooth_warp_sigma)
        return RegistrationLayer(self.transform, self.similarity, iterations=iterations, backward=self.backward,
                                 regularizer=self.regularizer, regularizer_weight=self.regularizer_weight,
                                 tolerance=self.tolerance, transform_options=options)
