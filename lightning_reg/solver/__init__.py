"""Registration as optimization: a batched, multi-scale, differentiable solver (torch only)."""
from .frames import Frames, field_of_view_overlap, make_frames
from .implicit import BackwardSettings, ImplicitSolution
from .layer import RegistrationLayer
from .objective import Objective, Prompt, label_prompt
from .optimize import (
    downsample,
    normalize_intensities,
    register,
    solve_scale,
    step_directions,
)
from .optimizers import Adam, GradientDescent
from .result import RegistrationResult
from .similarity import SIMILARITIES, Similarity, make_similarity
from .transforms import TRANSFORMS, Transform, make_transform

__all__ = [
    "Adam", "BackwardSettings", "Frames", "GradientDescent", "ImplicitSolution", "Objective", "Prompt",
    "RegistrationLayer", "RegistrationResult", "SIMILARITIES", "Similarity", "TRANSFORMS", "Transform",
    "downsample", "field_of_view_overlap", "label_prompt", "make_frames", "make_similarity", "make_transform", "normalize_intensities",
    "register", "solve_scale", "step_directions",
]
