"""Solver settings as plain dataclasses, so LightningCLI exposes every field
(``--model.train_solver.transform``, ``--model.eval_solver.transform affine+svf``)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields, make_dataclass, replace
from typing import Optional, Sequence

from ..solver import LEARNED, LINEAR, BackwardSettings, RegistrationLayer, stages
from ..solver.checks import check_number, check_scales, level_iterations
from ..solver.pyramid import source_levels


@dataclass
class SolverSettings:
    """How the implicit layer solves, for training or for evaluation (defaults: ``solver.defaults.LEARNED``).

    Args:
        transform: ``rigid``, ``affine``, ``freeform``, ``greedy``, ``svf``, ``bspline``, or a linear
            one then a deformable one, ``affine+svf`` (the second starts from the first, as in ANTs).
        similarity: inside the solver, on features: ``mse``, ``lncc``, ``ncc``, ``cosine``.
        similarity_options: options of the similarity (e.g. ``window`` of lncc, voxels).
        iterations: solver iterations per pyramid level, coarse to fine (one number: every level).
        scales: downsampling factors of the levels the solver runs on, coarse to fine (e.g. 8 4 2 1
            or 4 1); none: the network's own levels. A scale takes the finest network level at
            least that coarse and smooths it down further if needed.
        backward: ``jfb``, ``ift`` or ``unroll`` (see ``solver/implicit.py``).
        learning_rate: largest step of one iteration of a deformable transform, voxels of the level;
            none: the transform's own default (a linear one takes its own, or ``transform_options``).
        smooth_grad_sigma, smooth_warp_sigma: Gaussian sigmas (voxels of the level) of the gradient
            and of the field after each step (freeform, greedy, svf); none: the transform's defaults.
        regularizer, regularizer_weight: explicit penalty (``diffusion``, ``bending``) and weight.
        tolerance: early stop of a pair at this stationarity, or when its energy averaged over 10
            iterations no longer falls (0: run every iteration; ``solver/optimize.py``).
        optimizer: ``adam`` (bounded, smoothed steps), ``lbfgs`` (per-pair L-BFGS with a line search:
            a true minimum, where ``ift`` is exact) or ``gd``.
        interpolation: of the moving features inside the solver, ``linear`` or ``cubic`` (B-spline;
            a twice differentiable energy, as ``ift`` assumes); none: cubic with lbfgs and gd, linear
            with adam.
        transform_options: further options of the (deformable) transform (e.g. ``control_spacing`` of bspline).
        prompt_labels, prompt_weight: label values whose masks in the fixed and moving label maps
            are added to the energy (a label-fidelity prompt), and its weight; none by default.
        feature_channels: solve on this many principal components of each level's features (one
            basis per pair, from both images; ``solver.channels``): a cheaper solve; none: every channel.
    """

    transform: str = LEARNED.transform
    similarity: str = LEARNED.similarity
    similarity_options: dict = field(default_factory=dict)
    iterations: list[int] = field(default_factory=lambda: list(LEARNED.iterations))
    scales: list[float] | None = None
    backward: str = BackwardSettings.mode
    learning_rate: float | None = None
    smooth_grad_sigma: float | None = None
    smooth_warp_sigma: float | None = None
    regularizer: str | None = None
    regularizer_weight: float = 0.0
    tolerance: float = LEARNED.tolerance
    optimizer: str = LEARNED.optimizer
    interpolation: str | None = LEARNED.interpolation
    transform_options: dict = field(default_factory=dict)
    prompt_labels: list[int] = field(default_factory=list)
    prompt_weight: float = 1.0
    feature_channels: int | None = None

    def stages(self) -> tuple[str | None, str]:
        """``(linear transform solved first or None, final transform)`` of ``transform``."""
        return stages(self.transform)

    def layer(self) -> RegistrationLayer:
        """The registration layer of these settings; building it validates them."""
        check_number("prompt_weight", self.prompt_weight, 0)
        if self.feature_channels is not None and (
            isinstance(self.feature_channels, bool)
            or not isinstance(self.feature_channels, int)
            or self.feature_channels < 1
        ):
            raise ValueError(
                f"feature_channels must be a whole number >= 1 (or none: every channel), got {self.feature_channels!r}"
            )
        deformable = self.stages()[1] not in LINEAR
        options = dict(self.transform_options)
        steps = {"learning_rate": self.learning_rate if deformable else None}
        if self.stages()[1] in ("freeform", "greedy", "svf", "syn"):
            steps.update(smooth_grad_sigma=self.smooth_grad_sigma, smooth_warp_sigma=self.smooth_warp_sigma)
        for name, value in steps.items():
            if value is not None:
                options.setdefault(name, value)
        return RegistrationLayer(
            self.transform,
            self.similarity,
            scales=self.scales,
            iterations=self.iterations,
            backward=self.backward,
            regularizer=self.regularizer if deformable else None,
            regularizer_weight=self.regularizer_weight if deformable else 0.0,
            tolerance=self.tolerance,
            optimizer=self.optimizer,
            interpolation=self.interpolation,
            transform_options=options,
            similarity_options=dict(self.similarity_options),
        )

    def level_count(self, network_scales: Sequence[float]) -> int:
        """How many levels the solver runs: one per scale (the network's scales by default)."""
        return len(self.scales) if self.scales else len(network_scales)

    def check_levels(self, network_scales: Sequence[float]) -> None:
        """ValueError unless the iterations and scales fit a network with levels at ``network_scales``."""
        level_iterations(self.iterations, self.level_count(network_scales))
        if self.scales:
            source_levels(check_scales(self.scales), network_scales)


def _optional_fields() -> list[tuple[str, object, object]]:
    hints = typing.get_type_hints(SolverSettings)
    return [(item.name, Optional[hints[item.name]], field(default=None)) for item in fields(SolverSettings)]


def _resolve(self, train: SolverSettings) -> SolverSettings:
    """The training settings with every field given here (not ``None``) replaced."""
    return replace(
        train, **{item.name: getattr(self, item.name) for item in fields(self) if getattr(self, item.name) is not None}
    )


#: Evaluation settings: the fields of :class:`SolverSettings`, each ``None`` (= as in training) unless
#: given, so ``--model.eval_solver.transform svf`` changes the transform and nothing else.
EvalSolverSettings = make_dataclass(
    "EvalSolverSettings",
    _optional_fields(),
    namespace={
        "resolve": _resolve,
        "__module__": __name__,
        "__doc__": "Evaluation overrides of the training solver settings: each field None (= as in "
        "training) unless given.\n" + SolverSettings.__doc__.split("\n", 1)[1],
    },
)
