"""Training augmentation presets (``tio.Compose``). Each image of a pair is augmented on its own;
spatial transforms move an image and its label map together."""

from __future__ import annotations

import torchio as tio

AUGMENTATIONS = ("none", "spatial", "intensity", "full")


def spatial_augmentation(dims: int = 3) -> list[tio.Transform]:
    """Small random affine (±5 %, ±5°, ±3 mm) and a gentle elastic deformation (≤ 3 mm); in 2D
    (torchio's ``X x Y x 1`` grids) in the slice's plane only."""
    if dims == 3:
        return [
            tio.RandomAffine(scales=0.05, degrees=5, translation=3, p=0.8),
            tio.RandomElasticDeformation(num_control_points=7, max_displacement=3, p=0.3),
        ]
    return [
        tio.RandomAffine(
            scales=(0.95, 1.05, 0.95, 1.05, 1, 1), degrees=(0, 0, 0, 0, -5, 5), translation=(-3, 3, -3, 3, 0, 0), p=0.8
        ),
        tio.RandomElasticDeformation(num_control_points=(7, 7, 5), max_displacement=(3, 3, 0), p=0.3),
    ]


def intensity_augmentation() -> list[tio.Transform]:
    """Bias field, gamma, noise and blur, each with its own probability (images on [0, 1])."""
    return [
        tio.RandomBiasField(coefficients=0.3, p=0.5),
        tio.RandomGamma(log_gamma=(-0.3, 0.3), p=0.5),
        tio.RandomNoise(std=(0.0, 0.03), p=0.3),
        tio.RandomBlur(std=(0.0, 1.0), p=0.3),
    ]


def augmentation(name: str, dims: int = 3) -> list[tio.Transform]:
    """The transforms of preset ``name`` for ``dims``-D images: ``none``, ``spatial``,
    ``intensity`` or ``full`` (both)."""
    if name not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {name!r}; choose one of {', '.join(AUGMENTATIONS)}")
    steps = []
    if name in ("spatial", "full"):
        steps += spatial_augmentation(dims)
    if name in ("intensity", "full"):
        steps += intensity_augmentation()
    return steps
