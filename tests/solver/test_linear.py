"""Rigid and affine registration recover the parameters of a known linear transform."""

import math

import torch

from lightning_reg.data.synthetic import label_image, random_labels
from lightning_reg.solver import make_frames, register
from lightning_reg.solver.geometry.spatial import apply_matrix, identity_grid, sample


def _moving(shape, seed=0):
    generator = torch.Generator().manual_seed(seed)
    labels = random_labels(shape, 6, smoothness=6.0, generator=generator)
    return label_image(labels, torch.Generator().manual_seed(seed + 1), noise=0.0, bias=0.0, blur=1.0)


def _apply_centred(moving, centred):
    shape = moving.shape[2:]
    frames = make_frames(shape, shape, 1)
    grid = apply_matrix(frames.from_centred(centred).float(), identity_grid(shape))
    return sample(moving, grid)


def test_rigid_recovers_rotation_and_translation_2d():
    moving = _moving((72, 72))
    angle, shift = 0.12, torch.tensor([0.06, -0.04])
    truth = torch.eye(3, dtype=torch.float64)
    truth[:2, :2] = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    truth[:2, 2] = shift
    fixed = _apply_centred(moving, truth.unsqueeze(0))
    result = register(fixed, moving, transform="rigid", similarity="mse", scales=(2, 1), iterations=(200, 100))
    found = result.transform.centred_matrix()[0].detach().double()
    found_angle = math.atan2(found[1, 0], found[0, 0])
    assert abs(found_angle - angle) < 0.01
    assert torch.allclose(found[:2, 2], shift.double(), atol=0.01)


def test_affine_recovers_matrix_3d():
    moving = _moving((32, 36, 30))
    truth = torch.eye(4, dtype=torch.float64)
    truth[:3, :3] = torch.tensor([[1.06, 0.04, 0.0], [-0.03, 0.95, 0.02], [0.0, 0.03, 1.04]])
    truth[:3, 3] = torch.tensor([0.05, -0.03, 0.04])
    fixed = _apply_centred(moving, truth.unsqueeze(0))
    result = register(fixed, moving, transform="affine", similarity="mse", scales=(2, 1), iterations=(200, 100))
    found = result.transform.centred_matrix()[0].detach().double()
    assert (found[:3, :4] - truth[:3, :4]).abs().max() < 0.03
    before = (fixed - moving).pow(2).mean()
    after = (fixed - result.warp(moving)).pow(2).mean()
    assert after < 0.2 * before
