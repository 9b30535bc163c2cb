"""Fixed contrast recipes for the held-out test images (the donors have label maps, no scans): one
T1-like table (white matter bright, cortex grey), and a T2-like table (inverted) for the contrast shift.
Training never sees these tables; it renders every label with a random intensity."""

from __future__ import annotations

import numpy as np
import torch

from ...solver.geometry.filters import gaussian_smooth
from ..synthetic import smooth_noise
from .grid import TISSUE

#: mean intensity by structure, T1-weighted look (background 0, white matter 0.9)
T1_LIKE = {
    "cortex": 0.55,
    "thalamusproper": 0.75,
    "caudate": 0.62,
    "putamen": 0.66,
    "pallidum": 0.8,
    "accumbensarea": 0.6,
    "hippocampus": 0.56,
    "amygdala": 0.57,
    "tissue": 0.9,
}
RECIPES = ("t1like", "t2like")


def recipe_means(table: list[dict], recipe: str) -> torch.Tensor:
    """Intensity of each label 0..TISSUE: the structure's mean, +-0.02 by label (same for every
    subject); ``t2like`` inverts the brain's intensities."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown contrast recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    means = torch.zeros(TISSUE + 1)
    jitter = torch.Generator().manual_seed(83)
    for row in table:
        if row["hemisphere"] in ("L", "R"):
            key = "cortex" if row["structure"] == "cortex" else row["label"]
            means[row["id"]] = T1_LIKE[key] + 0.04 * (float(torch.rand(1, generator=jitter)) - 0.5)
    means[TISSUE] = T1_LIKE["tissue"]
    if recipe == "t2like":
        means[1:] = 1.1 - means[1:]
    return means


def tissue_means(recipe: str) -> torch.Tensor:
    """Intensity of each tissue label (0 background, 1 grey matter, 2 white matter) by ``recipe``:
    grey matter as the cortex, white matter as the brain's unlabelled inside."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown contrast recipe {recipe!r}; choose one of {', '.join(RECIPES)}")
    means = torch.tensor([0.0, T1_LIKE["cortex"], T1_LIKE["tissue"]])
    if recipe == "t2like":
        means[1:] = 1.1 - means[1:]
    return means


def render_recipe(
    labels: np.ndarray, means: torch.Tensor, seed: int, noise: float = 0.02, bias: float = 0.1, blur: float = 0.6
) -> np.ndarray:
    """Float32 image of a label map (with :data:`TISSUE`): the recipe's means, blurred (voxels),
    a smooth multiplicative bias of relative amplitude ``bias``, Gaussian ``noise``; in [0, 1]."""
    generator = torch.Generator().manual_seed(int(seed))
    image = gaussian_smooth(means[torch.as_tensor(labels, dtype=torch.long)][None, None], blur)
    field = smooth_noise(labels.shape, 1, max(labels.shape) / 3, generator)
    image = image * (1 + bias * field / field.abs().amax().clamp_min(1e-8))
    image = image + noise * torch.randn(image.shape, generator=generator)
    return image.clamp(0, 1)[0, 0].numpy().astype(np.float32)
