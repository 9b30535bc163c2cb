"""Different shapes, anisotropic spacing and world affines; Jacobians and exported displacements."""

import torch
import torch.nn.functional as F
from helpers import mean_dice

from lightning_reg.data.synthetic import oblique_affine, warped_pair
from lightning_reg.solver import register
from lightning_reg.solver.geometry.spatial import apply_matrix, identity_grid, sample


def _anisotropic_moving(pair):
    """The moving image resampled to half as many slices along the first axis (spacing ~2 mm)."""
    depth = pair["moving"].shape[2]
    shape = (depth // 2,) + tuple(pair["moving"].shape[3:])
    image = F.interpolate(pair["moving"], size=shape, mode="trilinear", align_corners=True)
    seg = F.interpolate(pair["moving_seg"].float(), size=shape, mode="nearest").long()
    affine = torch.eye(4, dtype=torch.float64)
    affine[0, 0] = (depth - 1) / (shape[0] - 1)
    return image, seg, affine


def test_anisotropic_moving_of_other_shape_with_world_offset():
    pair = warped_pair((32, 36, 28), magnitude=1.5, seed=6)
    moving, moving_seg, moving_affine = _anisotropic_moving(pair)
    fixed_affine = torch.eye(4, dtype=torch.float64)
    fixed_affine[:3, 3] = torch.tensor([5.0, -3.0, 2.0])
    moving_affine[:3, 3] = torch.tensor([5.0, -3.0, 2.0])  # same world placement, other grid
    headers_only = register(
        pair["fixed"], moving, scales=(1,), iterations=(0,), fixed_affine=fixed_affine, moving_affine=moving_affine
    )
    solved = register(
        pair["fixed"],
        moving,
        scales=(2, 1),
        iterations=(80, 40),
        fixed_affine=fixed_affine,
        moving_affine=moving_affine,
    )
    assert solved.grid.shape == (1, 32, 36, 28, 3)
    dice_identity = mean_dice(pair["fixed_seg"], pair["moving_seg"])
    dice_headers = mean_dice(pair["fixed_seg"], headers_only.warp_labels(moving_seg))
    dice_solved = mean_dice(pair["fixed_seg"], solved.warp_labels(moving_seg))
    assert abs(dice_headers - dice_identity) < 0.05  # the headers map slices to the right place
    assert dice_solved > dice_identity + 0.05


def test_world_translation_in_headers_is_the_initial_alignment():
    pair = warped_pair((40, 40), magnitude=0.0, seed=7)
    fixed_affine = torch.eye(3, dtype=torch.float64)
    moving_affine = torch.eye(3, dtype=torch.float64)
    moving_affine[:2, 2] = torch.tensor([4.0, 0.0])  # moving voxel i lies at world i + 4
    result = register(
        pair["fixed"],
        pair["moving"],
        scales=(1,),
        iterations=(0,),
        fixed_affine=fixed_affine,
        moving_affine=moving_affine,
    )
    displacement_voxels = result.displacement_voxels()
    assert torch.allclose(displacement_voxels, torch.zeros_like(displacement_voxels), atol=1e-4)
    moving_voxel = torch.einsum(
        "ij,bj...->bi...",
        torch.linalg.inv(moving_affine)[:2, :2].float(),
        result.moving_points_mm() - moving_affine[:2, 2].float().view(1, 2, 1, 1),
    )
    assert torch.allclose(moving_voxel[0, 0, 10, 5], torch.tensor(6.0), atol=1e-4)  # world 10 = moving 6


def test_jacobian_of_known_scaling_and_of_a_fold():
    pair = warped_pair((24, 24), magnitude=0.0, seed=8)
    result = register(pair["fixed"], pair["moving"], scales=(1,), iterations=(0,))
    scale = torch.tensor([[[1.1, 0.0, 0.0], [0.0, 0.9, 0.0], [0.0, 0.0, 1.0]]], dtype=torch.float64)
    result.grid = apply_matrix(scale.float(), identity_grid((24, 24)))
    assert torch.allclose(result.jacobian_determinant(), torch.full((1, 1, 24, 24), 0.99), atol=1e-4)
    folded = identity_grid((24, 24)).clone()
    folded[..., 0] = -folded[..., 0]  # a mirror: determinant -1 everywhere
    result.grid = folded
    assert torch.all(result.jacobian_determinant() < 0)


def test_grid_sample_is_twice_differentiable_on_cpu():
    image = torch.randn(1, 1, 5, 6, dtype=torch.float64, requires_grad=True)
    grid = (torch.rand(1, 4, 3, 2, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    assert torch.autograd.gradgradcheck(lambda i, g: sample(i, g), (image, grid))


def test_a_map_on_the_resampled_moving_image_composes_with_the_header_map():
    from lightning_reg.solver import RegistrationResult
    from lightning_reg.solver.resample import onto_fixed_grid, through_header

    pair = warped_pair((32, 36, 28), magnitude=1.5, seed=7)
    moving, _, moving_affine = _anisotropic_moving(pair)
    moving_affine[1, 3] = 1.5  # and shifted by 1.5 mm
    fixed, fixed_affine = pair["fixed"], torch.eye(4, dtype=torch.float64)
    header, resampled = onto_fixed_grid(fixed, moving, fixed_affine[None], moving_affine[None])
    assert resampled.shape == fixed.shape
    # no motion on top: the composed map is the header map itself
    still = RegistrationResult.from_voxel_displacement(torch.zeros(1, 3, *fixed.shape[2:]))
    assert torch.allclose(through_header(header, still).grid, header.grid, atol=1e-5)
    # a smooth motion on top: one resampling through the composed map = two resamplings in turn
    displacement = torch.zeros(1, 3, *fixed.shape[2:])
    displacement[:, 0] = 1.3
    displacement[:, 2] = -0.8 * torch.linspace(0, 1, fixed.shape[-1])
    predicted = RegistrationResult.from_voxel_displacement(displacement)
    once, twice = through_header(header, predicted).warp(moving), predicted.warp(resampled)
    inner = (slice(None), slice(None), *[slice(4, n - 4) for n in fixed.shape[2:]])
    assert (once - twice)[inner].abs().mean() < 0.1 * (predicted.warp(moving) - twice)[inner].abs().mean()
    assert onto_fixed_grid(fixed, fixed, fixed_affine[None], fixed_affine[None]) == (None, fixed)


def test_the_headers_map_is_what_register_returns_without_iterations():
    from lightning_reg.solver import RegistrationResult

    pair = warped_pair((20, 24, 16), magnitude=2.0, seed=3)
    fixed_affine = torch.tensor(oblique_affine(origin=(3.0, -2.0, 1.0)))
    moving_affine = fixed_affine.clone()
    moving_affine[:3, 3] += torch.tensor([2.0, -1.5, 0.5])  # and the moving grid another shape
    moving = torch.nn.functional.interpolate(pair["moving"], size=(18, 26, 16))
    solved = register(pair["fixed"], moving, iterations=0, fixed_affine=fixed_affine, moving_affine=moving_affine)
    header = RegistrationResult.from_headers((20, 24, 16), (18, 26, 16), fixed_affine, moving_affine)
    assert torch.equal(header.grid, solved.grid) and torch.equal(header.matrix, solved.matrix)
    assert not torch.allclose(header.grid, identity_grid((20, 24, 16)))  # the headers do move it
