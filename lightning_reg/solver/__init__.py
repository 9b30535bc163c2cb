"""Registration as optimization: a batched, multi-scale, differentiable solver (torch only)."""

from .defaults import CLASSICAL, FAST, LEARNED, PRESETS, Defaults
from .energy.objective import Masks, Objective, Prompt, label_prompt
from .energy.similarity import SIMILARITIES, Similarity, make_similarity
from .geometry.frames import Frames, field_of_view_overlap, make_frames
from .geometry.pyramid import downsample
from .geometry.transforms import LINEAR, TRANSFORMS, Transform, make_transform, stages
from .layer import RegistrationLayer
from .loop.implicit import BackwardSettings, ImplicitSolution, SingularHessianWarning
from .loop.optimize import solve_scale
from .loop.optimizers import OPTIMIZERS, Adam, QuasiNewton
from .options import SolverOptions, choices
from .register import normalize_intensities, register
from .result import RegistrationResult

__all__ = [
    "Adam",
    "BackwardSettings",
    "CLASSICAL",
    "Defaults",
    "FAST",
    "Frames",
    "ImplicitSolution",
    "LEARNED",
    "LINEAR",
    "Masks",
    "OPTIMIZERS",
    "PRESETS",
    "Objective",
    "Prompt",
    "QuasiNewton",
    "RegistrationLayer",
    "RegistrationResult",
    "SIMILARITIES",
    "Similarity",
    "SingularHessianWarning",
    "SolverOptions",
    "TRANSFORMS",
    "Transform",
    "choices",
    "downsample",
    "field_of_view_overlap",
    "label_prompt",
    "make_frames",
    "make_similarity",
    "make_transform",
    "normalize_intensities",
    "register",
    "solve_scale",
    "stages",
]
