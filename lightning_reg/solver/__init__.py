"""Registration as optimization: a batched, multi-scale, differentiable solver (torch only)."""
from .frames import Frames, make_frames
from .optimize import Adam, downsample, energy, normalize_intensities, register, solve_scale
from .result import RegistrationResult
from .similarity import SIMILARITIES, Similarity, make_similarity
from .transforms import TRANSFORMS, Transform, make_transform

__all__ = [
    "Adam", "Frames", "RegistrationResult", "SIMILARITIES", "Similarity", "TRANSFORMS", "Transform",
    "downsample", "energy", "make_frames", "make_similarity", "make_transform", "normalize_intensities",
    "register", "solve_scale",
]
