"""Feature networks (2D and 3D): each maps an image to a feature pyramid, coarse to fine."""

from .added import AddedFeatures
from .base import FeatureNetwork
from .encoder import EncoderFeatures
from .identity import IdentityFeatures
from .monai_adapter import MonaiFeatures
from .residual import ResidualFeatures
from .unet import LKUNet, UNet

__all__ = [
    "AddedFeatures",
    "EncoderFeatures",
    "FeatureNetwork",
    "IdentityFeatures",
    "LKUNet",
    "MonaiFeatures",
    "ResidualFeatures",
    "UNet",
]
