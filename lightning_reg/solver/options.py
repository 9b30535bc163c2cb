"""``SolverOptions``: every option of the solver in one typed, frozen object, written once.

``RegistrationLayer(options)``, ``register(fixed, moving, options)``, the training settings
(``training/solver_settings.py``) and the register command's flags are built from it: its field
types give the choices (``Literal``; ``tests/solver/test_options.py`` holds them to the registries),
its docstring is the help text (:func:`option_help`), ``defaults.py`` holds the named defaults.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Literal, Mapping, cast, get_args

import torch

from .checks import check_number, check_scales, level_iterations
from .energy.objective import Prompt, label_prompt
from .energy.regularizers import REGULARIZERS
from .energy.similarity import SIMILARITIES, Similarity, make_similarity
from .geometry.interpolation import SAMPLE_MODES
from .geometry.transforms import LINEAR, TRANSFORMS, Transform, stages
from .loop.implicit import BackwardMode, BackwardSettings
from .loop.optimizers import OPTIMIZERS
from .registry import build_named

TransformName = Literal["rigid", "affine", "freeform", "greedy", "svf", "bspline", "syn"]
LinearName = Literal["rigid", "affine"]
SimilarityName = Literal["mse", "lncc", "ncc", "cosine", "mi", "added"]
OptimizerName = Literal["adam", "lbfgs", "gd"]
InterpolationName = Literal["linear", "cubic"]
RegularizerName = Literal["diffusion", "bending"]
#: a linear stage then a deformable transform in one name, as configs and sweeps write it
PlanName = Literal[
    "rigid+freeform",
    "rigid+greedy",
    "rigid+svf",
    "rigid+bspline",
    "rigid+syn",
    "affine+freeform",
    "affine+greedy",
    "affine+svf",
    "affine+bspline",
    "affine+syn",
]
#: each named choice's type and the registry that builds it
CHOICES: dict[str, tuple[Any, Mapping[str, Any]]] = {
    "transform": (TransformName, TRANSFORMS),
    "linear": (LinearName, {name: TRANSFORMS[name] for name in LINEAR}),
    "similarity": (SimilarityName, SIMILARITIES),
    "optimizer": (OptimizerName, OPTIMIZERS),
    "interpolation": (InterpolationName, SAMPLE_MODES),
    "regularizer": (RegularizerName, REGULARIZERS),
}
#: ``backward`` given flat, as the layer's keywords before 0.3 (``backward="ift", cg_tolerance=...``)
BACKWARD_KEYS = {"jfb_steps", "phantom_damping", "truncated_steps", "cg_iterations", "cg_tolerance", "damping"}


def choices(option: str) -> tuple[str, ...]:
    """The names ``option`` accepts (``choices("optimizer")``: ``("adam", "lbfgs", "gd")``)."""
    return get_args(CHOICES[option][0])


@dataclass(frozen=True)
class SolverOptions:
    """How the solver registers a pair (defaults: the learned layer's, ``defaults.LEARNED``).

    ``transform`` and ``similarity`` may also be instances (a :class:`Transform`, a
    :class:`Similarity` of your own); ``transform="affine+svf"`` is short for ``linear="affine",
    transform="svf"``, as configs and sweeps write it.

    Args:
        transform: the map's representation: rigid, affine, freeform, greedy, svf, bspline or syn.
        linear: a linear transform (rigid, affine) solved first, without gradients, that the
            deformable transform starts from, as ANTs' affine stage before SyN; none: no such stage.
        similarity: mse, lncc, ncc, cosine, mi (one channel), or added (the image's channels by one
            similarity and learned channels beside them by another: nn.AddedFeatures).
        scales: downsampling factor of each solver level, coarse to fine (e.g. 4 2 1); none: one
            level per given pyramid level.
        iterations: solver iterations per level, coarse to fine (one number: every level).
        tolerance: early stop of a pair at this stationarity (gradient norm over its start), or
            when its energy averaged over patience iterations no longer falls; 0 runs every iteration.
        patience: iterations the no-longer-falling rule averages over.
        optimizer: adam (bounded, smoothed steps, as FireANTs), lbfgs (per-pair L-BFGS with a line
            search, to a true minimum, where ift is exact) or gd. lbfgs and gd take additive steps:
            the dense transforms' smoothing and greedy's composition do not apply, learning_rate
            bounds only the first step; regularize with regularizer.
        interpolation: of the moving image or features inside the energy: linear or cubic
            (B-spline: a twice differentiable energy, as ift assumes); none: cubic with lbfgs and
            gd, linear with adam.
        regularizer: explicit penalty of the deformable transform: diffusion or bending.
        regularizer_weight: its weight (0: none).
        transform_options: options of the deformable transform's constructor (learning_rate in
            voxels, smooth_grad_sigma, control_spacing, ...).
        similarity_options: options of the similarity's constructor (window of lncc, voxels).
        backward: how gradients reach the features: a BackwardSettings (jfb, ift or unroll, and
            conjugate gradient's settings for ift), or a mode's name (its default settings); read
            back as BackwardSettings (backward_settings).
        prompt_labels: label values whose masks in the fixed and moving label maps are added to the
            energy (a label-fidelity prompt; where label maps come with the images); none by default.
        prompt_weight: the prompt's weight.
        feature_channels: solve on this many principal components of each level's features (one
            basis per pair, from both images; solver.channels): a cheaper solve; none: every channel.
    """

    transform: TransformName | Transform = "freeform"
    linear: LinearName | None = None
    similarity: SimilarityName | Similarity = "lncc"
    scales: tuple[float, ...] | None = None
    iterations: int | tuple[int, ...] = (30, 15, 10)
    tolerance: float = 0.0
    patience: int = 10
    optimizer: OptimizerName = "adam"
    interpolation: InterpolationName | None = None
    regularizer: RegularizerName | None = None
    regularizer_weight: float = 0.0
    transform_options: Mapping[str, Any] = field(default_factory=dict)
    similarity_options: Mapping[str, Any] = field(default_factory=dict)
    backward: BackwardSettings | BackwardMode = field(default_factory=BackwardSettings)
    prompt_labels: tuple[int, ...] = ()
    prompt_weight: float = 1.0
    feature_channels: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.transform, str) and "+" in self.transform:
            linear, transform = stages(self.transform)
            if self.linear not in (None, linear):
                raise ValueError(f"transform {self.transform!r} and linear {self.linear!r} disagree: give one")
            self._set(linear=linear, transform=transform)
        iterations = self.iterations
        if isinstance(iterations, (int, float)):
            iterations = level_iterations(iterations, 1)[0]
        self._set(
            scales=None if self.scales is None else tuple(check_scales(self.scales)),
            iterations=iterations if isinstance(iterations, int) else tuple(iterations),
            tolerance=check_number("tolerance", self.tolerance, 0),
            patience=int(check_number("patience", self.patience, 1)),
            regularizer_weight=check_number("regularizer_weight", self.regularizer_weight, 0),
            transform_options=dict(self.transform_options or {}),
            similarity_options=dict(self.similarity_options or {}),
            prompt_labels=tuple(int(label) for label in self.prompt_labels or ()),
            prompt_weight=check_number("prompt_weight", self.prompt_weight, 0),
        )
        given: Any = self.backward  # a mode's name, or its settings as a mapping (a config), is read too
        if isinstance(given, str):
            self._set(backward=BackwardSettings(cast(BackwardMode, given)))
        elif isinstance(given, Mapping):
            self._set(backward=backward_settings(dict(given)))
        channels = self.feature_channels
        if channels is not None and (isinstance(channels, bool) or not isinstance(channels, int) or channels < 1):
            raise ValueError(f"feature_channels must be a whole number >= 1 (or none: every channel), got {channels!r}")
        for option in ("linear", "optimizer", "interpolation", "regularizer"):
            value = getattr(self, option)
            if value is not None and value not in CHOICES[option][1]:
                raise ValueError(f"unknown {option} {value!r}; choose one of {', '.join(choices(option))}")
        if self.linear is not None and self.transform_name in LINEAR:
            raise ValueError(
                f"linear {self.linear!r} is a stage before a deformable transform; {self.transform_name!r} "
                f"is linear (e.g. an affine stage before svf: --init affine --transform svf on the command "
                f"line, linear='affine', transform='svf' in Python)"
            )
        level_iterations(iterations, len(self.scales) if self.scales else _count(iterations))
        self.make_transform()  # unknown names and options fail here, not in the middle of a solve
        make_similarity(self.similarity, **self.similarity_options)

    def _set(self, **values: Any) -> None:
        for name, value in values.items():
            object.__setattr__(self, name, value)  # still being built: frozen once __post_init__ returns

    @property
    def backward_settings(self) -> BackwardSettings:
        """``backward`` as settings (a mode's name is made its settings when the options are built)."""
        return cast(BackwardSettings, self.backward)

    @property
    def transform_name(self) -> str:
        """The deformable (or only) transform's name."""
        return self.transform if isinstance(self.transform, str) else self.transform.name

    @property
    def plan(self) -> str:
        """How results and logs name the transform: ``affine+svf``, or ``svf`` alone."""
        return self.transform_name if self.linear is None else f"{self.linear}+{self.transform_name}"

    def label_prompts(self, fixed_labels: torch.Tensor | None, moving_labels: torch.Tensor | None) -> list[Prompt]:
        """The prompt of ``prompt_labels`` from label maps ``[B, 1, *S]`` (empty without ``prompt_labels``;
        ValueError when they are asked for and a label map is missing)."""
        if not self.prompt_labels:
            return []
        if fixed_labels is None or moving_labels is None:
            raise ValueError("prompt_labels need the label maps of both images")
        return [label_prompt(fixed_labels, moving_labels, list(self.prompt_labels), self.prompt_weight)]

    def make_transform(self) -> Transform:
        """A fresh transform of these options (an instance given is used as it is)."""
        if isinstance(self.transform, Transform):
            return self.transform
        return build_named(TRANSFORMS, "transform", self.transform, self.transform_options)

    def changed(self, **changes: Any) -> SolverOptions:
        """These options with ``changes``: field names, or (as the layer's keywords before 0.3)
        ``backward`` as a mode name and its settings flat (``cg_tolerance=1e-8``). A new
        ``transform`` without ``linear`` drops the linear stage unless it names one (``affine+svf``)."""
        known = {item.name for item in fields(self)}
        unknown = sorted(set(changes) - known - BACKWARD_KEYS)
        if unknown:
            raise TypeError(f"unknown solver option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        backward = changes.pop("backward", self.backward_settings)
        if isinstance(backward, str):
            backward = replace(self.backward_settings, mode=cast(BackwardMode, backward))
        elif isinstance(backward, Mapping):  # a config's partial settings: the others kept
            backward = backward_settings({**asdict(self.backward_settings), **backward})
        flat = {key: changes.pop(key) for key in BACKWARD_KEYS & set(changes)}
        changes["backward"] = replace(backward, **flat) if flat else backward
        if "transform" in changes and "linear" not in changes:
            changes["linear"] = None
        return replace(self, **changes)


def backward_settings(given: dict[str, Any]) -> BackwardSettings:
    """The backward settings of a mapping (``{"mode": "ift", "cg_tolerance": 1e-8}``); an unknown key
    says which are known."""
    known = {item.name for item in fields(BackwardSettings)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise ValueError(f"unknown backward option(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}")
    return BackwardSettings(**given)


def _count(iterations: int | tuple[int, ...]) -> int:
    return 1 if isinstance(iterations, int) else max(len(iterations), 1)


def solver_options(base: SolverOptions, options: Any, positional: tuple, changes: dict[str, Any]) -> SolverOptions:
    """The options a call means: ``options`` (else ``base``) with ``changes``. The layer's and
    ``register``'s leading arguments before 0.3 (transform, similarity, scales, iterations) are
    still read: ``options`` then is the transform and ``positional`` the rest."""
    if options is not None and not isinstance(options, SolverOptions):
        options, positional = None, (options, *positional)
    order = ("transform", "similarity", "scales", "iterations")
    if len(positional) > len(order):
        raise TypeError(f"at most {len(order)} positional solver options ({', '.join(order)}); name the rest")
    given = dict(zip(order, positional))
    clash = sorted(set(given) & set(changes))
    if clash:
        raise TypeError(f"solver option(s) {', '.join(clash)} given twice")
    start = base if options is None else options
    merged = {**given, **changes}
    return start.changed(**merged) if merged else start


def option_help(name: str, owner: type = SolverOptions) -> str:
    """The help text of option ``name``: its entry under ``Args:`` in ``owner``'s docstring, on one line."""
    entries = re.split(r"\n {8}(?=\w+(?:, \w+)*:)", (owner.__doc__ or "").split("Args:", 1)[-1])
    for entry in entries:
        names, _, text = entry.partition(":")
        if name in [part.strip() for part in names.split(",")]:
            return " ".join(text.split())
    raise KeyError(f"{owner.__name__} documents no option {name!r}")
