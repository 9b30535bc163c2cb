"""register() rejects bad input with messages that say what is wrong."""

import pytest
import torch

from lightning_reg.solver import register


def _image(*shape):
    return torch.rand(*shape)


@pytest.mark.parametrize(
    "fixed, moving, options, message",
    [
        (_image(1, 1, 16, 16), _image(1, 1, 16, 16, 16), {}, "fixed is 2D but moving is 3D"),
        (_image(16, 16), _image(16, 16), {}, r"must be \[B, C, H, W\]"),
        (_image(1, 1, 16, 16), _image(1, 2, 16, 16), {}, "same batch size and channels"),
        (torch.full((1, 1, 16, 16), float("nan")), _image(1, 1, 16, 16), {}, "NaN"),
        (torch.zeros(1, 1, 0, 16), _image(1, 1, 16, 16), {}, "empty"),
        (_image(1, 1, 16, 16), _image(1, 1, 16, 16), {"scales": (1, 2), "iterations": (5, 5)}, "coarse to fine"),
        (
            _image(1, 1, 16, 16),
            _image(1, 1, 16, 16),
            {"scales": (2, 1), "iterations": (5, 5, 5)},
            "one iteration count",
        ),
        (_image(1, 1, 16, 16), _image(1, 1, 16, 16), {"transform": "elastic"}, "unknown transform 'elastic'"),
        (_image(1, 1, 16, 16), _image(1, 1, 16, 16), {"regularizer": "tv"}, "unknown regularizer 'tv'"),
        (_image(1, 1, 16, 16), _image(1, 1, 16, 16), {"fixed_affine": torch.eye(4)}, "must be 3x3"),
    ],
)
def test_bad_input_raises_clear_error(fixed, moving, options, message):
    with pytest.raises(ValueError, match=message):
        register(fixed, moving, **{"iterations": (1, 1, 1), **options})
