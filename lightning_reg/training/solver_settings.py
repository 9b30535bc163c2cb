"""Solver settings as plain dataclasses, so LightningCLI exposes every field
(``--model.train_solver.transform``, ``--model.eval_solver.transform affine+svf``)."""
from __future__ import annotations

import typing
from dataclasses import dataclass, field, fields, make_dataclass, replace
from typing import Optional, Sequence

import torch

from ..solver import RegistrationLayer, downsample
from ..solver.checks import check_number

LINEAR = ("rigid", "affine")


@dataclass
class SolverSettings:
    """How the implicit layer solves, for training or for evaluation.

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
    similarity_options: dict = field(default_factory=dict)
    iterations: list[int] = field(default_factory=lambda: [100, 50, 20])
    scales: list[float] | None = None
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

    def stages(self) -> tuple[str | None, str]:
        """``(linear transform solved first or None, final transform)`` of ``transform``."""
        parts = self.transform.split("+")
        if len(parts) == 1:
            return None, parts[0]
        if len(parts) != 2 or parts[0] not in LINEAR or parts[1] in LINEAR:
            raise ValueError(f"transform {self.transform!r}: combine one linear transform ({', '.join(LINEAR)}) "
                             f"with one deformable one, e.g. affine+svf")
        return parts[0], parts[1]

    def layer(self, levels: int | None = None) -> RegistrationLayer:
        """The layer for the first ``levels`` pyramid levels (all by default); validates the settings."""
        return self._layer(self.stages()[1], levels)

    def init_layer(self, levels: int | None = None) -> RegistrationLayer | None:
        """The linear layer that runs first (``affine`` of ``affine+svf``), or ``None``."""
        linear = self.stages()[0]
        return None if linear is None else self._layer(linear, levels)

    def _layer(self, transform: str, levels: int | None) -> RegistrationLayer:
        check_number("prompt_weight", self.prompt_weight, 0)
        iterations = list(self.iterations) if isinstance(self.iterations, (list, tuple)) else [int(self.iterations)]
        if levels is not None:
            iterations = (iterations * levels)[:levels] if len(iterations) == 1 else iterations[:levels]
        options = dict(self.transform_options) if transform == self.stages()[1] else {}
        if transform in LINEAR:
            options.setdefault("learning_rate", 1e-2)
        else:
            options.setdefault("learning_rate", self.learning_rate)
        if transform in ("freeform", "greedy", "svf"):
            options.setdefault("smooth_grad_sigma", self.smooth_grad_sigma)
            options.setdefault("smooth_warp_sigma", self.smooth_warp_sigma)
        return RegistrationLayer(transform, self.similarity, iterations=iterations, backward=self.backward,
                                 regularizer=self.regularizer if transform not in LINEAR else None,
                                 regularizer_weight=self.regularizer_weight if transform not in LINEAR else 0.0,
                                 tolerance=self.tolerance, transform_options=options,
                                 similarity_options=dict(self.similarity_options))

    def level_count(self, network_scales: Sequence[int]) -> int:
        """How many levels the solver runs: one per scale (the network's scales by default)."""
        return len(self.scales) if self.scales else len(network_scales)

    def iterations_mismatch(self, network_scales: Sequence[int]) -> str | None:
        """Why ``iterations`` does not fit the solver's levels (one count each, or one for all), or ``None``."""
        count = len(self.iterations) if isinstance(self.iterations, (list, tuple)) else 1
        levels = self.level_count(network_scales)
        if count in (1, levels):
            return None
        return f"{levels} levels: scales {list(self.scales or network_scales)}, got {list(self.iterations)}"

    def pyramid(self, features: list[torch.Tensor], network_scales: Sequence[int]) -> list[torch.Tensor]:
        """The feature levels at ``scales`` from the network's levels at ``network_scales``."""
        if not self.scales:
            return features
        if any(a < b for a, b in zip(self.scales, self.scales[1:])):
            raise ValueError(f"scales must go coarse to fine (e.g. 8 4 2 1), got {list(self.scales)}")
        sources = self.source_levels(network_scales)
        return [downsample(features[index], scale / network_scales[index])
                for scale, index in zip(self.scales, sources)]

    def source_levels(self, network_scales: Sequence[int]) -> list[int]:
        """For each solver level, the index of the network level it comes from: the finest level at
        least as coarse as its scale (all network levels, in order, without ``scales``)."""
        if not self.scales:
            return list(range(len(network_scales)))
        sources = []
        for scale in self.scales:
            usable = [index for index, own in enumerate(network_scales) if own <= scale]
            if scale <= 0 or not usable:
                raise ValueError(f"scales {list(self.scales)}: each must be >= the network's finest scale "
                                 f"{min(network_scales)} (the network has levels at {list(network_scales)})")
            sources.append(min(usable, key=lambda i: scale - network_scales[i]))
        return sources


def _optional_fields() -> list[tuple[str, object, object]]:
    hints = typing.get_type_hints(SolverSettings)
    return [(item.name, Optional[hints[item.name]], field(default=None)) for item in fields(SolverSettings)]


def _resolve(self, train: SolverSettings) -> SolverSettings:
    """The training settings with every field given here (not ``None``) replaced."""
    return replace(train, **{item.name: getattr(self, item.name) for item in fields(self)
                             if getattr(self, item.name) is not None})


#: Evaluation settings: the fields of :class:`SolverSettings`, each ``None`` (= as in training) unless
#: given, so ``--model.eval_solver.transform svf`` changes the transform and nothing else.
EvalSolverSettings = make_dataclass(
    "EvalSolverSettings", _optional_fields(),
    namespace={"resolve": _resolve, "__module__": __name__,
               "__doc__": "Evaluation overrides of the training solver settings: each field None (= as in "
                          "training) unless given.\n" + SolverSettings.__doc__.split("\n", 1)[1]})
