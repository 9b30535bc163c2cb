"""MIND-SSC (``nn/mind.py``): values computed by hand, invariance to contrast, and the shapes and
errors of 2D and 3D. (In 3D it matched ``convexadam`` 0.2.0's ``MINDSSC`` channel for channel to
1.5e-7 on a random smoothed volume, in a one-off check with that package, which is not a dependency.)"""

from __future__ import annotations

import math

import pytest
import torch

from lightning_reg.nn import ResidualFeatures
from lightning_reg.nn.mind import mind_pairs, mind_ssc


def test_a_ramp_gives_the_values_computed_by_hand():
    """``I = x + 2 y``, dilation 2: the pairs' squared differences are ``d^2 (b - a)^2 = 4`` for the
    two pairs along one diagonal and ``d^2 (a + b)^2 = 36`` along the other; minus the minimum over
    the mean 16: 0 and 2, so the descriptors are 1, 1, exp(-2), exp(-2)."""
    y, x = torch.meshgrid(torch.arange(20.0), torch.arange(22.0), indexing="ij")
    descriptor = mind_ssc((x + 2 * y)[None, None], radius=2, dilation=2)
    assert descriptor.shape == (1, 4, 20, 22)
    inside = descriptor[0, :, 6:14, 6:16].flatten(1)  # away from the replicated edges
    values = sorted(float(channel.mean()) for channel in inside)
    assert values == pytest.approx([math.exp(-2), math.exp(-2), 1.0, 1.0], abs=1e-6)
    assert float((inside - inside[:, :1]).abs().max()) < 1e-6  # the same at every inner point


def test_it_does_not_change_with_contrast_and_is_one_where_there_is_none():
    image = torch.nn.functional.avg_pool3d(
        torch.rand(2, 1, 12, 14, 10, generator=torch.Generator().manual_seed(0)), 3, 1, 1
    )
    assert torch.allclose(mind_ssc(2.0 - 3.0 * image), mind_ssc(image), atol=1e-5)  # inverted, rescaled
    assert torch.equal(mind_ssc(torch.full((1, 1, 8, 9), 0.3)), torch.ones(1, 4, 8, 9))


def test_shapes_channels_and_errors():
    assert (mind_pairs(2), mind_pairs(3)) == (4, 12)
    assert mind_ssc(torch.rand(2, 3, 8, 9, 7)).shape == (2, 36, 8, 9, 7)
    with pytest.raises(ValueError, match="MIND-SSC takes"):
        mind_ssc(torch.rand(1, 1, 8))
    with pytest.raises(ValueError, match="dilation >= 1"):
        mind_ssc(torch.rand(1, 1, 8, 8), dilation=0)


def test_residual_features_on_mind_start_as_mind():
    network = ResidualFeatures(dims=3, base="mind")
    image = torch.rand(1, 1, 16, 16, 16)
    (features,) = network(image)
    assert network.out_channels == [12] and torch.equal(features, mind_ssc(image))
    with pytest.raises(ValueError, match="unknown base 'sift'"):
        ResidualFeatures(base="sift")
