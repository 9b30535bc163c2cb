"""``register`` is a face over ``RegistrationLayer``: a plan runs both stages in the solver, the final
warp is the transform evaluated at full resolution, and the headers place every level."""

import pytest
import torch

from lightning_reg.data.synthetic import warped_pair
from lightning_reg.solver import RegistrationLayer, register
from lightning_reg.solver.defaults import CLASSICAL, LEARNED

SHAPE = (48, 48)


def test_a_plan_equals_the_two_stages_run_one_after_the_other():
    pair = warped_pair(SHAPE, magnitude=2.0, seed=4)
    shifted = torch.roll(pair["moving"], shifts=(3, -2), dims=(2, 3))
    options = dict(scales=(2, 1), iterations=(40, 20))
    affine = register(pair["fixed"], shifted, transform="affine", **options)
    stages = register(pair["fixed"], shifted, transform="greedy", init=affine, **options)
    plan = register(pair["fixed"], shifted, transform="affine+greedy", **options)
    assert torch.allclose(plan.matrix, affine.matrix)
    assert torch.allclose(plan.grid, stages.grid, atol=1e-5)
    with pytest.raises(ValueError, match="combine one linear transform"):
        register(pair["fixed"], shifted, transform="greedy+affine", **options)


@pytest.mark.parametrize("transform", ["svf", "bspline"])
def test_the_final_warp_is_the_transform_evaluated_at_full_resolution(transform):
    pair = warped_pair(SHAPE, magnitude=2.0, seed=1)
    result = register(pair["fixed"], pair["moving"], transform=transform, scales=(4, 2), iterations=(30, 30))
    assert result.fixed_shape == SHAPE and len(result.loss_trace) == 2
    coarse = result.evaluated_at((24, 24))  # the finest level the solver ran on
    interpolated = coarse.resized(SHAPE).grid
    assert torch.allclose(result.evaluated_at(SHAPE).grid, result.grid)
    # integrating (svf) or evaluating (bspline) on the full grid is not interpolating the coarse warp
    assert float((interpolated - result.grid).abs().max()) > 1e-4
    assert float((interpolated - result.grid).abs().mean()) < 0.02  # but the same warp


def test_headers_place_every_level_even_when_the_finest_scale_is_coarse():
    """Affines belong to the given (full-resolution) grid: with 0 iterations the warp is the
    headers' alignment, whatever the scales (a moving header shifted by 3 and -1.5 mm at 1.5 mm
    voxels: fixed voxel (r, c) samples moving voxel (r - 2, c + 1))."""
    image = warped_pair(SHAPE, seed=2)["fixed"]
    fixed_affine = torch.diag(torch.tensor([1.5, 1.5, 1.0], dtype=torch.float64))
    moving_affine = fixed_affine.clone()
    moving_affine[:2, 2] = torch.tensor([3.0, -1.5])
    rows, columns = torch.meshgrid(*(torch.arange(n, dtype=torch.float32) for n in SHAPE), indexing="ij")
    inside = (slice(4, -4), slice(4, -4))
    for scales in [(4, 2, 1), (4, 2)]:
        result = register(
            image, image, scales=scales, iterations=0, fixed_affine=fixed_affine, moving_affine=moving_affine
        )
        sampled_rows = result.warp(rows[None, None])[0, 0]
        sampled_columns = result.warp(columns[None, None])[0, 0]
        assert torch.allclose(sampled_rows[inside], rows[inside] - 2, atol=1e-3), scales
        assert torch.allclose(sampled_columns[inside], columns[inside] + 1, atol=1e-3), scales


def test_defaults_live_once():
    """The layer solves with ``LEARNED`` and ``register`` with ``CLASSICAL`` unless told otherwise."""
    assert RegistrationLayer().options is LEARNED
    pair = warped_pair(SHAPE, seed=3)
    levels = []
    register(pair["fixed"], pair["moving"], iterations=1, callback=lambda level, *_: levels.append(level))
    assert levels == list(range(len(CLASSICAL.scales)))
