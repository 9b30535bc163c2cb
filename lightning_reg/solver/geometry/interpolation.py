"""Interpolation written with gather, differentiable to any order (linear and cubic B-spline), and the
check that picks linear over ``grid_sample``.

The implicit layer differentiates the solver's gradient (double backward through sampling).
``grid_sample`` supports that on the CPU build; where a device's build does not, ``spatial.sample``
falls back to :func:`linear_sample`, which is built from indexing and arithmetic only.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

_TWICE_DIFFERENTIABLE: dict[str, bool] = {}


def _linear_weights(fraction: torch.Tensor) -> list[torch.Tensor]:
    return [1 - fraction, fraction]


def cubic_bspline(t: torch.Tensor) -> torch.Tensor:
    """Uniform cubic B-spline basis at ``t`` (in knot units), support ``[-2, 2]``, twice continuously
    differentiable."""
    t = t.abs()
    inner = (4.0 - 6.0 * t**2 + 3.0 * t**3) / 6.0
    outer = (2.0 - t).clamp_min(0) ** 3 / 6.0
    return torch.where(t < 1, inner, outer)


def _cubic_weights(fraction: torch.Tensor) -> list[torch.Tensor]:
    """Weights of the taps at offsets -1, 0, 1, 2 for ``fraction`` in [0, 1)."""
    return [cubic_bspline(fraction - offset) for offset in (-1, 0, 1, 2)]


#: per kind: the tap offsets along each axis and their weights as functions of the fraction
_KERNELS = {"linear": ((0, 1), _linear_weights), "cubic": ((-1, 0, 1, 2), _cubic_weights)}
#: the solver's interpolation options and the ``spatial.sample`` mode of each
SAMPLE_MODES = {"linear": "bilinear", "cubic": "cubic"}


def tap_sample(
    image: torch.Tensor, grid: torch.Tensor, padding_mode: str = "border", kind: str = "linear"
) -> torch.Tensor:
    """``grid_sample`` (``align_corners=True``) of ``image [B, C, *S_in]`` at ``grid [B, *S_out, d]``
    from the voxels around each point; ``padding_mode`` ``border`` or ``zeros``. Returns
    ``[B, C, *S_out]``.

    ``kind`` ``linear``: bilinear/trilinear, as ``grid_sample``. ``cubic``: the cubic B-spline of the
    voxel values (an approximation: it smooths by (1, 4, 1)/6 at the voxels), twice continuously
    differentiable in the coordinates, so an energy through it has a Hessian everywhere; linear
    interpolation's gradient jumps where a point crosses a voxel boundary. Its ``border`` padding
    repeats the edge voxels as coefficients (smooth across the edge, constant two voxels beyond). ``grid_sample`` has no
    3D cubic mode and no double backward for its 2D bicubic one, hence this.
    """
    offsets, weights_of = _KERNELS[kind]
    batch, channels, *sizes = image.shape
    dims = len(sizes)
    out_shape = grid.shape[1:-1]
    points = grid.reshape(batch, -1, dims).flip(-1)  # array axis order
    extent = torch.tensor([n - 1 for n in sizes], dtype=grid.dtype, device=grid.device)
    position = (points + 1) / 2 * extent  # grid_sample's own arithmetic, so cells match at voxel centres
    if padding_mode == "border" and kind == "linear":  # clamped, no gradient on or beyond the edge (as grid_sample)
        inside = (position > 0) & (position < extent)
        position = torch.where(inside, position, torch.minimum(position.detach().clamp_min(0), extent))
    lower = position.detach().floor()
    fraction = position - lower
    lower = lower.long()
    count = len(offsets)
    # every tap of the last d-1 axes at once, one loop over the taps of the first axis (memory B*C*N*k^(d-1))
    rest = torch.tensor(
        list(itertools.product(range(count), repeat=dims - 1)), dtype=torch.long, device=grid.device
    ).reshape(-1, dims - 1)
    shift = torch.tensor(offsets, device=grid.device)
    axis_weights = [torch.stack(weights_of(fraction[..., axis]), dim=-1) for axis in range(dims)]  # [B, N, k]
    rest_weight = torch.ones_like(fraction[..., :1])
    rest_index = torch.zeros_like(lower[..., :1])
    rest_inside = torch.ones_like(rest_index, dtype=torch.bool)
    for axis in range(1, dims):
        coordinate = lower[..., axis, None] + shift[rest[:, axis - 1]]  # [B, N, T]
        rest_weight = rest_weight * axis_weights[axis][..., rest[:, axis - 1]]
        rest_inside = rest_inside & (coordinate >= 0) & (coordinate < sizes[axis])
        stride = int(torch.tensor(sizes[axis + 1 :]).prod())
        rest_index = rest_index + coordinate.clamp(0, sizes[axis] - 1) * stride
    flat = image.reshape(batch, channels, -1)
    first_stride = int(torch.tensor(sizes[1:]).prod())
    result = torch.zeros((), dtype=image.dtype, device=image.device)
    for tap, offset in enumerate(offsets):
        coordinate = lower[..., :1] + offset
        inside = rest_inside & (coordinate >= 0) & (coordinate < sizes[0])
        index = rest_index + coordinate.clamp(0, sizes[0] - 1) * first_stride
        weight = rest_weight * axis_weights[0][..., tap, None]
        if padding_mode == "zeros":
            weight = weight * inside
        points_count, taps = index.shape[1], index.shape[2]
        values = flat.gather(2, index.reshape(batch, 1, -1).expand(-1, channels, -1))
        result = result + (values.view(batch, channels, points_count, taps) * weight.unsqueeze(1)).sum(-1)
    return result.reshape(batch, channels, *out_shape)


def linear_sample(image: torch.Tensor, grid: torch.Tensor, padding_mode: str = "border") -> torch.Tensor:
    """Bilinear/trilinear :func:`tap_sample`, differentiable to any order."""
    return tap_sample(image, grid, padding_mode, "linear")


def grid_sample_twice_differentiable(device: torch.device) -> bool:
    """Whether ``grid_sample``'s double backward works on ``device`` (checked once, cached)."""
    key = torch.device(device).type
    if key not in _TWICE_DIFFERENTIABLE:
        with torch.inference_mode(False), torch.enable_grad():  # the first call may come from evaluation
            _TWICE_DIFFERENTIABLE[key] = _check_double_backward(device)
    return _TWICE_DIFFERENTIABLE[key]


def _check_double_backward(device: torch.device) -> bool:
    image = torch.randn(1, 1, 4, 5, dtype=torch.float64, device=device, requires_grad=True)
    grid = (torch.rand(1, 3, 2, 2, dtype=torch.float64, device=device) * 1.6 - 0.8).requires_grad_()

    def sampled(image, grid):
        return F.grid_sample(image, grid, padding_mode="border", align_corners=True)

    try:
        return bool(torch.autograd.gradgradcheck(sampled, (image, grid), raise_exception=False))
    except (RuntimeError, NotImplementedError):
        return False
