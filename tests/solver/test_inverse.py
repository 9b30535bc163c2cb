"""Inverse transforms: exact for linear and svf, a fixed-point inversion with its residual for the
other fields; forward then inverse lands where it started."""

from __future__ import annotations

import pytest
import torch

from lightning_reg.data.synthetic import warped_pair
from lightning_reg.solver import RegistrationResult, register
from lightning_reg.solver.geometry.invert_field import INVERSE_TOLERANCE


@pytest.fixture(scope="module")
def pair():
    return warped_pair((48, 52), magnitude=3.0, seed=3)


@pytest.mark.parametrize(
    "transform, method, mean_voxels",
    [
        ("affine", "exact", 1e-4),
        ("svf", "exact", 0.1),
        ("greedy", "fixed-point", 0.15),
        ("affine+greedy", "fixed-point", 0.2),
        ("bspline", "fixed-point", 0.25),
        ("syn", "symmetric", 0.1),
    ],
)
def test_forward_then_inverse_lands_where_it_started(pair, transform, method, mean_voxels):
    result = register(pair["fixed"], pair["moving"], transform=transform, iterations=[60, 30, 15])
    field = result.inverse_field()
    backward = result.inverse(field)
    mean, p95 = result.inverse_consistency_mm(backward)  # 1 mm pixels here: mm = voxels
    assert field.method == method and float(mean[0]) < mean_voxels and float(mean[0]) <= float(p95[0])
    if method != "exact":
        # the iteration stops at steps below INVERSE_TOLERANCE voxels, residuals about twice that
        assert 0 < field.iterations <= 200 and float(field.residual_voxels[0]) < 2.5 * INVERSE_TOLERANCE
    # the moving image, warped and then mapped back, is the moving image again (inside the view)
    back = result.inverse().warp(result.warp(pair["moving"]))
    inner = (..., slice(6, -6), slice(6, -6))
    error = (back - pair["moving"])[inner].abs().mean()
    assert error < 0.5 * (result.warp(pair["moving"]) - pair["moving"])[inner].abs().mean()


def test_a_constant_shift_inverts_to_the_opposite_shift():
    displacement = torch.zeros(1, 2, 30, 34)
    displacement[:, 0], displacement[:, 1] = 2.0, -1.5  # voxels along the two axes
    result = RegistrationResult.from_voxel_displacement(displacement)
    field = result.inverse_field()
    assert field.method == "fixed-point" and float(field.residual_voxels[0]) < 2.5 * INVERSE_TOLERANCE
    back = RegistrationResult.from_voxel_displacement(displacement)
    back.grid = result.inverse(field).grid
    assert torch.allclose(back.displacement_voxels(), -displacement, atol=2.5 * INVERSE_TOLERANCE)


def test_the_inverse_of_an_anisotropic_moving_grid_lives_on_that_grid():
    pair = warped_pair((24, 28, 20), magnitude=2.0, seed=5)
    moving = torch.nn.functional.interpolate(pair["moving"], size=(12, 28, 20), mode="trilinear", align_corners=True)
    moving_affine = torch.eye(4, dtype=torch.float64)
    moving_affine[0, 0] = 23 / 11
    result = register(
        pair["fixed"], moving, transform="svf", iterations=[30, 15], scales=[2, 1], moving_affine=moving_affine[None]
    )
    backward = result.inverse()
    assert backward.fixed_shape == (12, 28, 20) and backward.moving_shape == (24, 28, 20)
    assert torch.allclose(backward.frames.fixed_affine[0], moving_affine)
    mean, _ = result.inverse_consistency_mm(backward)
    assert float(mean[0]) < 0.15  # mm; the fixed voxels are 1 mm
