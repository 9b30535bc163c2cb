"""Per-pair evaluation rows, and results built from another method's voxel displacement."""

import pytest
import torch

from lightning_reg.evaluation.rows import mean_rows, pair_rows
from lightning_reg.solver import RegistrationResult


@pytest.mark.parametrize("shape", [(12, 16), (10, 12, 14)])
def test_a_voxel_displacement_samples_where_it_says(shape):
    dims = len(shape)
    moving = torch.rand(1, 1, *shape)
    for axis in range(dims):
        displacement = torch.zeros(1, dims, *shape)
        displacement[:, axis] = 2.0  # every fixed voxel samples the moving voxel two steps further on this axis
        warped = RegistrationResult.from_voxel_displacement(displacement).warp(moving)
        inner = [slice(None), slice(None)] + [
            slice(0, n - 2) if a == axis else slice(None) for a, n in enumerate(shape)
        ]
        assert torch.allclose(warped[tuple(inner)], moving.roll(-2, dims=2 + axis)[tuple(inner)], atol=1e-5)


def test_rows_score_identity_and_a_known_shift_of_the_labels():
    seg = torch.zeros(1, 1, 16, 16, dtype=torch.long)
    seg[..., 4:10, 4:10] = 1
    shifted = seg.roll(2, dims=2)
    batch = {"fixed": seg.float(), "moving": shifted.float(), "fixed_seg": seg, "moving_seg": shifted, "id": ["a"]}
    same = pair_rows(batch, RegistrationResult.from_voxel_displacement(torch.zeros(1, 2, 16, 16)), 0.5)[0]
    assert same["dice"] == pytest.approx(4 / 6) and same["folding_percent"] == 0 and same["id"] == "a"
    displacement = torch.zeros(1, 2, 16, 16)
    displacement[:, 0] = 2.0
    aligned = pair_rows(batch, RegistrationResult.from_voxel_displacement(displacement), 0.5)[0]
    assert aligned["dice"] == pytest.approx(1.0) and aligned["hd95"] == pytest.approx(0.0)
    assert mean_rows([same, aligned, {"dice": float("nan")}])["dice"] == pytest.approx((4 / 6 + 1) / 2)
