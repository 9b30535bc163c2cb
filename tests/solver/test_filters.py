"""Separable filters against their definitions: a Gaussian's moments, the box mean as a sum."""

import math

import pytest
import torch

from lightning_reg.solver.geometry.filters import box_mean, gaussian_smooth, gaussian_weights


@pytest.mark.parametrize("sigma", [0.5, 1.0, 2.5])
def test_gaussian_weights_have_unit_sum_and_the_asked_variance(sigma):
    weights = torch.tensor(gaussian_weights(sigma), dtype=torch.float64)
    offsets = torch.arange(len(weights), dtype=torch.float64) - len(weights) // 2
    assert float(weights.sum()) == pytest.approx(1.0, abs=1e-15)
    # truncation at 3 sigma and sampling shrink the variance a little; from sigma 1 on by < 3 %
    variance = float((weights * offsets**2).sum())
    assert variance == pytest.approx(sigma**2, rel=0.03 if sigma >= 1 else 0.3)


def test_smoothing_an_impulse_in_3d_gives_the_separable_kernel_and_keeps_the_mass():
    impulse = torch.zeros(1, 2, 15, 15, 15)
    impulse[:, :, 7, 7, 7] = 1.0
    smoothed = gaussian_smooth(impulse, 1.5)
    weights = torch.tensor(gaussian_weights(1.5))
    radius = len(weights) // 2
    expected = weights.view(-1, 1, 1) * weights.view(1, -1, 1) * weights.view(1, 1, -1)
    window = slice(7 - radius, 7 + radius + 1)
    assert torch.allclose(smoothed[0, 1, window, window, window], expected, atol=1e-7)
    assert float(smoothed.sum()) == pytest.approx(2.0, rel=1e-6)
    assert gaussian_smooth(impulse, 0) is impulse


def test_box_mean_is_the_mean_over_the_window_with_zero_padding():
    values = torch.randn(1, 1, 9, 11, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    window = 3
    padded = torch.nn.functional.pad(values, (1, 1, 1, 1))
    expected = sum(padded[..., i : i + 9, j : j + 11] for i in range(window) for j in range(window)) / window**2
    assert torch.allclose(box_mean(values, window), expected, atol=1e-12)
    assert math.isclose(float(box_mean(torch.ones(1, 1, 5, 5), 5)[0, 0, 2, 2]), 1.0, rel_tol=1e-6)


@pytest.mark.parametrize("window", [1, 2, 4, 5, 8, 13])
def test_box_mean_matches_the_sum_definition_for_any_window_and_short_axes(window):
    """Even windows (one more voxel before the centre than after) and windows longer than an axis."""
    values = torch.randn(1, 2, 6, 3, 9, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    before, after = window // 2, window - window // 2 - 1
    padded = torch.nn.functional.pad(values, (before, after) * 3)
    expected = (
        sum(
            padded[..., i : i + 6, j : j + 3, k : k + 9]
            for i in range(window)
            for j in range(window)
            for k in range(window)
        )
        / window**3
    )
    assert torch.allclose(box_mean(values, window), expected, atol=1e-12)
