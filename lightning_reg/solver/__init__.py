"""Registration as optimization: a batched, multi-scale, differentiable solver (torch only)."""
from .defaults import CLASSICAL, LEARNED, Defaults
from .frames import Frames, field_of_view_overlap, make_frames
from .implicit import BackwardSettings, ImplicitSolution
from .layer import RegistrationLayer
from .objective import Objective, Prompt, label_prompt
from .optimize import solve_scale, step_directions
from .optimizers import Adam, GradientDescent
from .pyramid import downsample
from .register import normalize_intensities, register
from .result import RegistrationResult
from .similarity import SIMILARITIES, Similarity, make_similarity
from .transforms import LINEAR, TRANSFORMS, Transform, make_transform, stages

__all__ = [
    "Adam", "BackwardSettings", "CLASSICAL", "Defaults", "Frames", "GradientDescent", "ImplicitSolution", "LEARNED",
    "LINEAR", "Objective", "Prompt", "RegistrationLayer", "RegistrationResult", "SIMILARITIES", "Similarity",
    "TRANSFORMS", "Transform", "downsample", "field_of_view_overlap", "label_prompt", "make_frames",
    "make_similarity", "make_transform", "normalize_intensities", "register", "solve_scale", "stages",
    "step_directions",
]
