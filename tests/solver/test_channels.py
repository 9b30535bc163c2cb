"""Principal components of a pair's features: an orthogonal projection shared by both images."""

import pytest
import torch

from lightning_reg.solver.channels import principal_channels


def _pair(generator, dims_used: int, channels: int = 6):
    """Two feature maps ``[2, channels, 9, 8, 7]`` whose values lie in a ``dims_used``-dimensional
    affine subspace of the channel space (plus an offset), different for each pair of the batch."""
    mixing = torch.randn(2, channels, dims_used, generator=generator, dtype=torch.float64)
    offset = torch.randn(2, channels, 1, 1, 1, generator=generator, dtype=torch.float64)
    maps = [
        torch.einsum(
            "bcd,bd...->bc...", mixing, torch.randn(2, dims_used, 9, 8, 7, generator=generator, dtype=torch.float64)
        )
        + offset
        for _ in range(2)
    ]
    return maps


def test_keeping_the_spanned_components_keeps_every_squared_difference():
    generator = torch.Generator().manual_seed(0)
    fixed, moving = _pair(generator, dims_used=3)
    reduced_fixed, reduced_moving = principal_channels(fixed, moving, 3)
    assert reduced_fixed.shape == (2, 3, 9, 8, 7) and reduced_moving.shape == (2, 3, 9, 8, 7)
    # any voxel of one map against any voxel of the other: distances in channel space are kept
    original = torch.cdist(fixed.flatten(2).transpose(1, 2), moving.flatten(2).transpose(1, 2))
    kept = torch.cdist(reduced_fixed.flatten(2).transpose(1, 2), reduced_moving.flatten(2).transpose(1, 2))
    assert torch.allclose(original, kept, atol=1e-9)


def test_the_first_component_is_the_strongest_direction_and_gradients_pass():
    generator = torch.Generator().manual_seed(1)
    direction = torch.tensor([3.0, 4.0, 0.0, 0.0], dtype=torch.float64) / 5
    strength = [torch.randn(1, 1, 10, 10, generator=generator, dtype=torch.float64) * 5 for _ in range(2)]
    noise = [0.01 * torch.randn(1, 4, 10, 10, generator=generator, dtype=torch.float64) for _ in range(2)]
    fixed, moving = (s * direction.view(1, 4, 1, 1) + n for s, n in zip(strength, noise))
    fixed.requires_grad_(True)
    reduced_fixed, reduced_moving = principal_channels(fixed, moving, 1)
    correlation = torch.corrcoef(torch.stack([reduced_fixed.flatten(), strength[0].flatten()]))[0, 1]
    assert abs(float(correlation)) > 0.999
    (gradient,) = torch.autograd.grad(reduced_fixed.sum(), fixed)
    assert torch.allclose(gradient.abs()[0, :, 0, 0], direction, atol=1e-3)  # the projection's row
    with pytest.raises(ValueError, match=">= 1"):
        principal_channels(fixed, moving, 0)
    assert principal_channels(fixed, moving, 4)[0] is fixed  # every channel kept: untouched
