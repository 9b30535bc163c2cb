"""Feature networks (2D and 3D): each maps an image to a feature pyramid, coarse to fine."""

from .base import FeatureNetwork
from .encoder import EncoderFeatures
from .identity import IdentityFeatures
from .monai_adapter import MonaiFeatures
from .residual import ResidualFeatures
from .unet import LKUNet, UNet

__all__ = [
    "EncoderFeatures",
    "FeatureNetwork",
    "IdentityFeatures",
    "LKUNet",
    "MonaiFeatures",
    "ResidualFeatures",
    "UNet",
]
