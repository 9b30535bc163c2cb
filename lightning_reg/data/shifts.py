"""Named, deterministic domain-shift presets for testing: what a model meets when the test scans
differ from the training scans.

``anisotropy<f>`` (thick slices: downsampled by ``f`` along the last axis, resampled back),
``intensity`` (bias field, gamma, monotone contrast remapping), ``noise`` (Gaussian, std 0.05 of the
[0, 1] range), and ``+`` combinations such as ``anisotropy4+intensity``. ``clean`` is no shift.
Each image draws its own parameters from a seed fixed by its pair and role, so a preset gives the
same test set in every run.
"""

from __future__ import annotations

import re

import torch
import torchio as tio
from torchio.transforms.augmentation import RandomTransform

#: The presets the robustness benchmark runs, in order.
SHIFTS = ("clean", "anisotropy2", "anisotropy4", "anisotropy6", "intensity", "noise", "anisotropy4+intensity")


class RandomContrastRemap(RandomTransform, tio.IntensityTransform):
    """Map intensities on [0, 1] through a random increasing piecewise-linear curve of ``knots``
    inner knots (another scanner's contrast). Written here: torchio has gamma, not arbitrary
    monotone remapping."""

    def __init__(self, knots: int = 4, **kwargs) -> None:
        super().__init__(**kwargs)
        self.knots = knots
        self.args_names = ["knots"]

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        for image in self.get_images(subject):
            levels = torch.rand(self.knots + 1).add(0.2).cumsum(0)
            curve = torch.cat([torch.zeros(1), levels / levels[-1]])
            positions = torch.linspace(0, 1, len(curve))
            data = image.data.float().clamp(0, 1)
            index = torch.bucketize(data, positions[1:-1])
            weight = (data - positions[index]) / (positions[index + 1] - positions[index])
            image.set_data(curve[index] + weight * (curve[index + 1] - curve[index]))
        return subject


def _preset(name: str, axis: int) -> list[tio.Transform]:
    anisotropy = re.fullmatch(r"anisotropy(\d+(?:\.\d+)?)", name)
    if anisotropy:
        factor = float(anisotropy.group(1))
        if factor < 1:
            raise ValueError(f"shift {name}: the downsampling factor must be >= 1")
        return [tio.RandomAnisotropy(axes=(axis,), downsampling=(factor, factor))]
    if name == "intensity":
        return [
            tio.RandomBiasField(coefficients=(0.4, 0.6)),
            tio.RandomGamma(log_gamma=(-0.4, 0.4)),
            tio.RescaleIntensity(out_min_max=(0.0, 1.0)),
            RandomContrastRemap(),
        ]
    if name == "noise":
        return [tio.RandomNoise(std=(0.05, 0.05))]
    raise ValueError(
        f"unknown shift {name!r}: use clean, anisotropy<factor> (e.g. anisotropy4), intensity, "
        f"noise, or a combination joined by '+' (e.g. anisotropy4+intensity)"
    )


def shift_transform(name: str | None, dims: int) -> tio.Compose | None:
    """The transform of preset ``name`` for ``dims``-D images (None for ``clean``/None)."""
    if name is None or name == "clean":
        return None
    axis = dims - 1  # the last spatial axis (inferior-superior after canonical orientation)
    steps = [step for part in name.split("+") for step in _preset(part.strip(), axis)]
    return tio.Compose(steps + [tio.RescaleIntensity(out_min_max=(0.0, 1.0), percentiles=(0.5, 99.5))])


def apply_seeded(transform: tio.Transform, subject: tio.Subject, seed: int) -> tio.Subject:
    """``transform(subject)`` with torch's random state set from ``seed`` (and restored after)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return transform(subject)
