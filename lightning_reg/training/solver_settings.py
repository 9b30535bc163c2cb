"""Solver settings as plain dataclasses, so LightningCLI exposes every field
(``--model.train_solver.transform``, ``--model.eval_solver.transform affine+svf``)."""

from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields, make_dataclass, replace
from typing import Optional, Sequence

from ..solver import LEARNED, LINEAR, BackwardSettings, RegistrationLayer, SolverOptions, stages
from ..solver.checks import check_number, check_scales, level_iterations
from ..solver.geometry.pyramid import source_levels
from ..solver.loop.implicit import BackwardMode
from ..solver.options import (
    InterpolationName,
    LinearName,
    OptimizerName,
    PlanName,
    RegularizerName,
    SimilarityName,
    TransformName,
    option_help,
)

#: the training-only settings' help (the shared options' is ``SolverOptions``' docstring)
_OWN_HELP = """\
        backward: jfb, ift, unroll or truncated (solver/loop/implicit.py).
        backward_options: the backward mode's settings (solver.loop.implicit.BackwardSettings: jfb_steps,
            phantom_damping, truncated_steps, cg_tolerance, ...).
        learning_rate: largest step of one iteration of a deformable transform, voxels of the level;
            none: the transform's own default (a linear one takes its own, or transform_options).
        smooth_grad_sigma: Gaussian sigma (voxels of the level) of the gradient after each step
            (freeform, greedy, svf, syn); none: the transform's default.
        smooth_warp_sigma: Gaussian sigma of the field after each step; none: the transform's default.
        prompt_labels: label values whose masks in the fixed and moving label maps are added to the
            energy (a label-fidelity prompt); none by default.
        prompt_weight: the prompt's weight.
        feature_channels: solve on this many principal components of each level's features (one
            basis per pair, from both images; solver.channels): a cheaper solve; none: every channel."""
#: the options of ``SolverOptions`` a config sets (the rest: its defaults)
_SHARED = ("transform", "linear", "similarity", "similarity_options", "iterations", "scales", "regularizer")
_SHARED += ("regularizer_weight", "tolerance", "optimizer", "interpolation", "transform_options")
#: the dense transforms whose steps are smoothed (``smooth_grad_sigma``, ``smooth_warp_sigma``)
SMOOTHED = ("freeform", "greedy", "svf", "syn")


@dataclass
class SolverSettings:
    transform: TransformName | PlanName = LEARNED.transform
    linear: LinearName | None = LEARNED.linear
    similarity: SimilarityName = LEARNED.similarity
    similarity_options: dict = field(default_factory=dict)
    iterations: list[int] = field(default_factory=lambda: list(LEARNED.iterations))
    scales: list[float] | None = LEARNED.scales
    backward: BackwardMode = LEARNED.backward.mode
    backward_options: dict = field(default_factory=dict)
    learning_rate: float | None = None
    smooth_grad_sigma: float | None = None
    smooth_warp_sigma: float | None = None
    regularizer: RegularizerName | None = LEARNED.regularizer
    regularizer_weight: float = LEARNED.regularizer_weight
    tolerance: float = LEARNED.tolerance
    optimizer: OptimizerName = LEARNED.optimizer
    interpolation: InterpolationName | None = LEARNED.interpolation
    transform_options: dict = field(default_factory=dict)
    prompt_labels: list[int] = field(default_factory=list)
    prompt_weight: float = 1.0
    feature_channels: int | None = None

    def options(self) -> SolverOptions:
        """The solver's options of these settings; building them validates them (ValueError)."""
        name = stages(self.transform)[1]
        deformable = name not in LINEAR
        steps = {"learning_rate": self.learning_rate if deformable else None}
        if name in SMOOTHED:
            steps.update(smooth_grad_sigma=self.smooth_grad_sigma, smooth_warp_sigma=self.smooth_warp_sigma)
        transform_options = dict(self.transform_options)
        for name, value in steps.items():
            if value is not None:
                transform_options.setdefault(name, value)
        return SolverOptions(
            transform=self.transform,
            linear=self.linear,
            similarity=self.similarity,
            similarity_options=dict(self.similarity_options),
            scales=self.scales,
            iterations=self.iterations,
            tolerance=self.tolerance,
            optimizer=self.optimizer,
            interpolation=self.interpolation,
            regularizer=self.regularizer if deformable else None,
            regularizer_weight=self.regularizer_weight if deformable else 0.0,
            transform_options=transform_options,
            backward=_backward(self.backward, self.backward_options),
        )

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
        return RegistrationLayer(self.options())

    def stages(self) -> tuple[str | None, str]:
        """``(linear transform solved first or None, final transform)``."""
        options = self.options()
        return options.linear, options.transform_name

    def level_count(self, network_scales: Sequence[float]) -> int:
        """How many levels the solver runs: one per scale (the network's scales by default)."""
        return len(self.scales) if self.scales else len(network_scales)

    def check_levels(self, network_scales: Sequence[float]) -> None:
        """ValueError unless the iterations and scales fit a network with levels at ``network_scales``."""
        level_iterations(self.iterations, self.level_count(network_scales))
        if self.scales:
            source_levels(check_scales(self.scales), network_scales)


def _backward(mode: BackwardMode, options: dict) -> BackwardSettings:
    """The backward settings of ``mode`` and its ``options``; an unknown option says which are known."""
    known = {item.name for item in fields(BackwardSettings)} - {"mode"}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"unknown backward option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return BackwardSettings(mode, **options)


def _settings_doc() -> str:
    """``SolverSettings``' docstring: the shared options' help from ``SolverOptions``, then its own."""
    shared = "".join(f"        {name}: {option_help(name)}\n" for name in _SHARED)
    return (
        "How the implicit layer solves, for training or for evaluation (defaults: ``solver.defaults.LEARNED``);\n"
        "    LightningCLI exposes every field (``--model.train_solver.transform``).\n\n    Args:\n"
        f"{shared}{_OWN_HELP}\n    "
    )


SolverSettings.__doc__ = _settings_doc()


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
