"""SynthMorph-style pairs: two random warps of one random label map, each rendered with its own
random contrast, blur, noise and bias field. 2D or 3D, fully seeded, no download."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch

from ..solver.geometry.filters import gaussian_smooth
from ..solver.geometry.spatial import exponentiate, field_to_grid, identity_grid, sample
from .synthetic import random_labels, random_velocity, smooth_noise


@dataclass
class SynthSettings:
    """How pairs are drawn. Lengths are in voxels.

    Args:
        shape: spatial shape, 2 or 3 numbers.
        num_labels: foreground labels inside the brain-like ellipsoid.
        label_smoothness: size of the label regions (sigma of the noise whose argmax makes them).
        warp_magnitude: RMS displacement of each of the two warps; their relative warp is larger.
        warp_smoothness: spatial scale of the warps.
        blur: largest Gaussian blur sigma; noise: largest noise std; bias: largest bias amplitude.
        same_contrast: render both images with the same intensities (easier; off = SynthMorph).
    """

    shape: Sequence[int] = (64, 64)
    num_labels: int = 4
    label_smoothness: float = 8.0
    warp_magnitude: float = 3.0
    warp_smoothness: float = 10.0
    blur: float = 1.0
    noise: float = 0.05
    bias: float = 0.2
    same_contrast: bool = False

    def __post_init__(self) -> None:
        self.shape = tuple(int(n) for n in self.shape)
        if len(self.shape) not in (2, 3) or min(self.shape) < 8:
            raise ValueError(f"shape must be 2 or 3 sizes of at least 8 voxels, got {self.shape}")
        if self.num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {self.num_labels}")


def random_means(num_labels: int, generator: torch.Generator) -> torch.Tensor:
    """A random contrast: the intensity of each label ``0..num_labels`` in [0, 1], background 0."""
    means = torch.rand(num_labels + 1, generator=generator)
    means[0] = 0.0
    return means


def render(
    labels: torch.Tensor, settings: SynthSettings, generator: torch.Generator, means: torch.Tensor | None = None
) -> torch.Tensor:
    """Intensity image ``[1, 1, *S]`` of a label map: an intensity per label (``means``, or drawn by
    :func:`random_means`), random blur, a multiplicative smooth bias field, additive noise; rescaled
    to ``[0, 1]``."""
    means = random_means(settings.num_labels, generator) if means is None else means
    image = means[labels]
    sigma = float(torch.rand(1, generator=generator)) * settings.blur
    image = gaussian_smooth(image, sigma) if sigma > 0.1 else image
    shape = labels.shape[2:]
    field = smooth_noise(shape, 1, max(shape) / 3, generator)
    amplitude = float(torch.rand(1, generator=generator)) * settings.bias
    image = image * torch.exp(amplitude * field / field.abs().amax().clamp_min(1e-8))
    image = image + float(torch.rand(1, generator=generator)) * settings.noise * torch.randn(
        image.shape, generator=generator
    )
    low, high = image.amin(), image.amax()
    return (image - low) / (high - low).clamp_min(1e-8)


def synth_pair(settings: SynthSettings, seed: int) -> dict[str, torch.Tensor]:
    """One pair: ``fixed``, ``moving`` ``[1, *S]`` float in [0, 1], ``fixed_seg``, ``moving_seg``
    ``[1, *S]`` int64 (0 = background, 1..num_labels)."""
    generator = torch.Generator().manual_seed(int(seed))
    labels = random_labels(settings.shape, settings.num_labels, settings.label_smoothness, generator)
    segs = []
    for _ in range(2):
        velocity = random_velocity(settings.shape, settings.warp_magnitude, settings.warp_smoothness, generator)
        grid = identity_grid(settings.shape) + field_to_grid(exponentiate(velocity))
        segs.append(sample(labels.float(), grid, mode="nearest").long())
    contrast = torch.Generator().manual_seed(int(seed) + 7919)
    fixed = render(segs[0], settings, contrast)
    if settings.same_contrast:
        contrast = torch.Generator().manual_seed(int(seed) + 7919)
    moving = render(segs[1], settings, contrast)
    return {"fixed": fixed[0], "moving": moving[0], "fixed_seg": segs[0][0], "moving_seg": segs[1][0]}
