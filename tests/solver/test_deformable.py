"""Deformable transforms recover known warps; diffeomorphic ones do not fold; batching is exact."""

import pytest
import torch
from helpers import mean_dice

from lightning_reg.data.synthetic import warped_pair
from lightning_reg.solver import register
from lightning_reg.solver.geometry.spatial import identity_grid

SHAPE = (64, 64)


def _warp_error(grid, true_grid, shape):
    """Mean distance in voxels between two sampling grids."""
    voxels = torch.tensor([(n - 1) / 2 for n in shape][::-1])
    return float(((grid - true_grid) * voxels).norm(dim=-1).mean())


@pytest.fixture(scope="module")
def pair():
    return warped_pair(SHAPE, magnitude=2.0, seed=0)


@pytest.mark.parametrize("transform", ["freeform", "greedy", "svf", "bspline", "syn"])
def test_recovers_known_deformation(pair, transform):
    result = register(pair["fixed"], pair["moving"], transform=transform, scales=(2, 1), iterations=(100, 100))
    dice_before = mean_dice(pair["fixed_seg"], pair["moving_seg"])
    dice_after = mean_dice(pair["fixed_seg"], result.warp_labels(pair["moving_seg"]))
    error_before = _warp_error(identity_grid(SHAPE), pair["true_grid"], SHAPE)
    error_after = _warp_error(result.grid, pair["true_grid"], SHAPE)
    assert dice_after > dice_before + 0.15
    assert error_after < 0.75 * error_before


def test_diffeomorphic_transforms_do_not_fold_where_freeform_does():
    large = warped_pair(SHAPE, magnitude=5.0, seed=0, smoothness=6.0)
    folding = {}
    for transform in ("freeform", "greedy", "svf", "syn"):
        result = register(large["fixed"], large["moving"], transform=transform, scales=(2, 1), iterations=(100, 100))
        folding[transform] = int((result.jacobian_determinant() <= 0).sum())
    assert folding["freeform"] > 0
    assert folding["greedy"] == 0
    assert folding["svf"] == 0
    assert folding["syn"] == 0


@pytest.mark.parametrize("transform", ["greedy", "affine", "bspline"])
def test_batched_equals_separate_calls(transform):
    pairs = [warped_pair((48, 40), magnitude=2.0, seed=seed) for seed in (1, 2)]
    fixed = torch.cat([p["fixed"] for p in pairs])
    moving = torch.cat([p["moving"] for p in pairs])
    batched = register(fixed, moving, transform=transform, scales=(2, 1), iterations=(40, 30))
    for index, p in enumerate(pairs):
        alone = register(p["fixed"], p["moving"], transform=transform, scales=(2, 1), iterations=(40, 30))
        assert torch.allclose(batched.grid[index], alone.grid[0], atol=1e-4)
        assert batched.loss_trace[-1].shape[1] == 2


def test_affine_then_deformable_initialisation():
    pair = warped_pair(SHAPE, magnitude=2.0, seed=4)
    shifted = torch.roll(pair["moving"], shifts=(3, -2), dims=(2, 3))
    shifted_seg = torch.roll(pair["moving_seg"], shifts=(3, -2), dims=(2, 3))
    affine = register(pair["fixed"], shifted, transform="affine", scales=(2, 1), iterations=(100, 50))
    both = register(pair["fixed"], shifted, transform="greedy", init=affine, scales=(2, 1), iterations=(100, 100))
    assert torch.allclose(both.matrix, affine.matrix)
    dice_affine = mean_dice(pair["fixed_seg"], affine.warp_labels(shifted_seg))
    dice_both = mean_dice(pair["fixed_seg"], both.warp_labels(shifted_seg))
    assert dice_both > dice_affine + 0.05


def test_three_d_greedy_and_linear_label_warping():
    pair = warped_pair((24, 28, 20), magnitude=1.5, seed=5)
    result = register(pair["fixed"], pair["moving"], transform="greedy", scales=(2, 1), iterations=(60, 40))
    nearest = result.warp_labels(pair["moving_seg"], mode="nearest")
    linear = result.warp_labels(pair["moving_seg"], mode="linear")
    assert set(torch.unique(linear).tolist()) <= set(torch.unique(pair["moving_seg"]).tolist())
    before = mean_dice(pair["fixed_seg"], pair["moving_seg"])
    assert mean_dice(pair["fixed_seg"], nearest) > before + 0.05
    assert mean_dice(pair["fixed_seg"], linear) > before + 0.05
    assert result.jacobian_determinant().shape == (1, 1, 24, 28, 20)
