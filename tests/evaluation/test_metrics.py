"""Metrics match values computed by hand on constructed examples."""

import itertools
import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from lightning_reg.evaluation import metrics


def test_dice_of_known_overlaps():
    fixed = torch.zeros(1, 1, 10, 10, dtype=torch.long)
    warped = torch.zeros_like(fixed)
    fixed[..., 0:4, 0:5] = 3  # 20 voxels
    warped[..., 2:6, 0:5] = 3  # 20 voxels, 10 shared -> 0.5
    fixed[..., 6:8, 6:8] = 7  # 4 voxels, matched exactly -> 1.0
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
            both = np.concatenate(
                [
                    ndimage.distance_transform_edt(~b, sampling=spacing)[a],
                    ndimage.distance_transform_edt(~a, sampling=spacing)[b],
                ]
            )
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


def _identity(shape):
    return torch.stack(torch.meshgrid(*[torch.arange(n, dtype=torch.float64) for n in shape], indexing="ij"))


def _signed_volume(points):
    """Signed area (2D, shoelace) or volume (3D, triple product) of a simplex from its vertices."""
    if len(points) == 3:
        (x0, y0), (x1, y1), (x2, y2) = points
        return 0.5 * ((x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0))
    a, b, c = (np.subtract(p, points[0]) for p in points[1:])
    return float(np.dot(a, np.cross(b, c))) / 6


def _brute_force_ndv(displacement):
    """NDV (percent) by loops over the cells of the edge-padded grid, each cut both ways into simplices
    listed by vertices, an inverted simplex counting its area or volume times -det, halved for the two
    cuttings; a simplex belongs to a voxel (its corner, or a central one's corner of the cell it starts
    or ends) and counts when that voxel is in the grid."""
    dims, shape = displacement.shape[0], displacement.shape[1:]
    displacement = displacement.numpy()

    def point(index):  # edge-replicated displacement beyond the grid
        inside = tuple(min(max(i, 0), n - 1) for i, n in zip(index, shape))
        return np.asarray(index, float) + displacement[(slice(None), *inside)]

    if dims == 2:
        owned = [((1, 0), (0, 0), (1, 1)), ((0, 1), (1, 1), (0, 0)), ((0, 0), (1, 0), (0, 1)), ((1, 1), (0, 1), (1, 0))]
    else:
        corners = [tuple(corner) for corner in itertools.product((0, 1), repeat=3)]
        owned = [
            tuple([corner] + [tuple(c ^ (a == axis) for a, c in enumerate(corner)) for axis in range(3)])
            for corner in corners
        ]
        owned += [((0, 0, 0), (1, 1, 0), (1, 0, 1), (0, 1, 1)), ((1, 1, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1))]
    inverted = 0.0
    for cell in itertools.product(*[range(-1, n) for n in shape]):
        for simplex in owned:
            owner = np.add(cell, simplex[0])
            if any(o < 0 or o >= n for o, n in zip(owner, shape)):
                continue
            before = _signed_volume([np.add(cell, v) for v in simplex])
            after = _signed_volume([point(np.add(cell, v)) for v in simplex])
            inverted += 0.5 * max(-after / before, 0) * abs(before)
    return inverted / math.prod(shape) * 100


@pytest.mark.parametrize("shape", [(6, 7), (4, 5, 3)])
def test_non_diffeomorphic_volume_of_identity_reflection_and_a_random_fold(shape):
    identity = _identity(shape)
    assert metrics.non_diffeomorphic_volume(torch.zeros_like(identity)) == 0.0
    reflected = torch.zeros_like(identity)
    reflected[0] = -2 * identity[0]  # x -> -x
    # every simplex inverted with det -1, but for those past the first and last voxel along the axis,
    # where the displacement is extended by its edge value
    assert metrics.non_diffeomorphic_volume(reflected) == pytest.approx(100.0 * (shape[0] - 1) / shape[0])
    generator = torch.Generator().manual_seed(0)
    folded = 0.4 * torch.randn(identity.shape, generator=generator, dtype=torch.float64)
    ndv = metrics.non_diffeomorphic_volume(folded)
    assert ndv > 0 and ndv == pytest.approx(_brute_force_ndv(folded), rel=1e-9)


def test_non_diffeomorphic_volume_sees_a_voxel_that_central_differences_miss():
    """The paper's example: one voxel moved past its neighbour's midpoint leaves every
    central-difference Jacobian positive, but the triangles at it are inverted."""
    displacement = torch.zeros(2, 5, 5, dtype=torch.float64)
    displacement[0, 2, 2] = 1.5
    positions = displacement + _identity((5, 5))
    jacobian = torch.linalg.det(torch.stack([torch.stack(torch.gradient(positions[c]), -1) for c in range(2)], -2))
    assert float(jacobian.min()) > 0  # folding % is 0
    # hand count: the two triangles at (2, 2) towards +axis 0 have det (3 - 3.5) = -0.5, the two of
    # (3, 2) towards -axis 0 the same: 4 triangles x 0.5 (det) x 0.5 (area) x 0.5 (two cuttings) = 0.5
    # pixels of 25
    assert metrics.non_diffeomorphic_volume(displacement) == pytest.approx(0.5 / 25 * 100)
