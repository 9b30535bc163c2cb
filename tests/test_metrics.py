"""Metrics match values computed by hand on constructed examples."""
import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from lightning_reg import metrics


def test_dice_of_known_overlaps():
    fixed = torch.zeros(1, 1, 10, 10, dtype=torch.long)
    warped = torch.zeros_like(fixed)
    fixed[..., 0:4, 0:5] = 3   # 20 voxels
    warped[..., 2:6, 0:5] = 3  # 20 voxels, 10 shared -> 0.5
    fixed[..., 6:8, 6:8] = 7   # 4 voxels, matched exactly -> 1.0
    warped[..., 6:8, 6:8] = 7
    scores = metrics.dice_per_label(fixed, warped)
    assert scores == pytest.approx({3: 0.5, 7: 1.0})


def test_folding_and_sdlogj():
    determinant = torch.ones(1, 1, 10, 10)
    determinant[..., :2, :5] = -0.5  # 10 of 100 voxels fold
    assert metrics.folding_percent(determinant) == pytest.approx(10.0)
    halves = torch.tensor([math.e, 1 / math.e]).repeat(50).view(1, 1, 10, 10)
    assert metrics.sdlogj(halves) == pytest.approx(float(torch.tensor([1.0, -1.0]).repeat(50).std()), rel=1e-5)


def _sphere(shape, centre, radius, spacing=(1.0, 1.0, 1.0)):
    """A ball of ``radius`` mm around voxel ``centre`` on a grid of ``spacing`` mm."""
    axes = torch.meshgrid(*[torch.arange(n, dtype=torch.float32) for n in shape], indexing="ij")
    distance = sum(((axis - c) * s) ** 2 for axis, c, s in zip(axes, centre, spacing)).sqrt()
    return (distance <= radius).long().view(1, 1, *shape)


def test_hd95_of_shifted_spheres_is_the_shift_in_mm():
    fixed = _sphere((40, 40, 40), (20, 20, 20), 8)
    warped = _sphere((40, 40, 40), (23, 20, 20), 8)
    assert metrics.hd95(fixed, warped) == pytest.approx(3.0, abs=0.5)
    spacing = (2.0, 1.0, 1.0)
    fixed = _sphere((40, 40, 40), (20, 20, 20), 10, spacing)
    warped = _sphere((40, 40, 40), (22, 20, 20), 10, spacing)  # 2 voxels = 4 mm
    assert metrics.hd95(fixed, warped, spacing=spacing) == pytest.approx(4.0, abs=0.6)
    assert metrics.hd95(fixed, fixed) == 0.0


def _full_image_hd95(fixed, warped, spacing, labels):
    """The definition, on the whole image for every label: what the per-label boxes must reproduce."""
    def surface(mask):
        return mask & ~ndimage.binary_erosion(mask, border_value=0)
    values = []
    for label in labels:
        a, b = surface(fixed == label), surface(warped == label)
        if a.any() and b.any():
            both = np.concatenate([ndimage.distance_transform_edt(~b, sampling=spacing)[a],
                                   ndimage.distance_transform_edt(~a, sampling=spacing)[b]])
            values.append(np.percentile(both, 95))
    return float(np.mean(values))


def test_hd95_on_label_boxes_equals_the_whole_image_computation():
    """Many labels, some touching the border, one missing from the warped map, anisotropic voxels."""
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(2, 1, 1, 6, 7, 5, generator=generator)
    fixed, warped = (torch.nn.functional.interpolate(n, size=(30, 34, 26), mode="trilinear")[0] for n in noise)
    fixed, warped = ((x * 6).round().long() + 20 for x in (fixed, warped))  # labels ~ 14..26
    warped[warped == 20] = 21
    spacing = (1.5, 1.0, 2.0)
    labels = metrics.label_values(fixed)
    expected = _full_image_hd95(fixed.squeeze().numpy(), warped.squeeze().numpy(), spacing, labels.tolist())
    assert metrics.hd95(fixed, warped, spacing=spacing) == pytest.approx(expected, rel=1e-12)
