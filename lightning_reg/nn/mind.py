"""MIND-SSC: the modality independent neighbourhood descriptor with a self-similarity context
(Heinrich et al., MICCAI 2013), weight-free features that compare each voxel's surroundings with
themselves rather than intensities across images, so they survive a change of contrast.

Written here from the paper because the well-kept implementation (``convexadam``'s ``MINDSSC``) is
3D only and brings SimpleITK and scikit-learn with it; ``tests/nn/test_mind.py`` checks this one
against values computed by hand (2D) and, in a development check, matched ``convexadam`` 0.2.0 in 3D.

For every pair of points of the six-neighbourhood (four in 2D) at distance ``sqrt(2)`` (12 pairs in
3D, 4 in 2D), ``dilation`` voxels from the centre, the squared difference of the image at the two
points, averaged over a ``(2 radius + 1)``-wide box: ``D_k(x)``. Then
``MIND_k(x) = exp(-(D_k(x) - min_j D_j(x)) / V(x))`` with ``V`` the mean over ``k`` of the numerator,
kept within ``[1e-3, 1e3]`` times its mean over the image.
"""

from __future__ import annotations

import itertools

import torch
import torch.nn.functional as F

#: the relative range ``V(x)`` is kept within, around its mean over the image (as the reference code)
VARIANCE_RANGE = (1e-3, 1e3)


def _neighbour_pairs(dims: int) -> list[tuple[tuple[int, ...], tuple[int, ...]]]:
    """The pairs of unit neighbours (offsets ``+-e_k``) whose squared distance is 2."""
    neighbours = [tuple(sign * int(axis == k) for axis in range(dims)) for k in range(dims) for sign in (1, -1)]
    return [(a, b) for a, b in itertools.combinations(neighbours, 2) if sum((x - y) ** 2 for x, y in zip(a, b)) == 2]


def mind_pairs(dims: int) -> int:
    """Descriptor channels per image channel: 4 in 2D, 12 in 3D."""
    return len(_neighbour_pairs(dims))


def _shifted(padded: torch.Tensor, offset: tuple[int, ...], dilation: int, shape: tuple[int, ...]) -> torch.Tensor:
    """``image(x + dilation * offset)`` for every ``x`` of the unpadded grid (``padded`` by ``dilation``)."""
    index = [slice(None), slice(None)]
    index += [slice(dilation + dilation * step, dilation + dilation * step + size) for step, size in zip(offset, shape)]
    return padded[tuple(index)]


def _box_mean(values: torch.Tensor, radius: int) -> torch.Tensor:
    """Mean over a ``2 radius + 1`` box, the edges replicated."""
    if radius == 0:
        return values
    dims = values.dim() - 2
    padded = F.pad(values, [radius] * (2 * dims), mode="replicate")
    pool = F.avg_pool2d if dims == 2 else F.avg_pool3d
    return pool(padded, 2 * radius + 1, stride=1)


def mind_ssc(image: torch.Tensor, radius: int = 2, dilation: int = 2) -> torch.Tensor:
    """MIND-SSC of ``image`` ``[B, C, *S]`` (2D or 3D): ``[B, C * P, *S]`` in ``(0, 1]``, ``P`` = 4
    (2D) or 12 (3D) neighbour pairs per channel; ``radius`` and ``dilation`` in voxels."""
    dims = image.dim() - 2
    if dims not in (2, 3):
        raise ValueError(f"MIND-SSC takes [B, C, H, W] or [B, C, D, H, W], got shape {tuple(image.shape)}")
    if radius < 0 or dilation < 1:
        raise ValueError(f"radius must be >= 0 and dilation >= 1, got {radius} and {dilation}")
    shape = tuple(image.shape[2:])
    image = image.float()
    padded = F.pad(image, [dilation] * (2 * dims), mode="replicate")
    distances = torch.cat(
        [
            (_shifted(padded, a, dilation, shape) - _shifted(padded, b, dilation, shape)) ** 2
            for a, b in _neighbour_pairs(dims)
        ],
        dim=1,
    )  # [B, C * P, *S], pairs inner per channel
    distances = _box_mean(distances, radius).unflatten(1, (image.shape[1], mind_pairs(dims)))  # [B, C, P, *S]
    numerator = distances - distances.amin(2, keepdim=True)
    variance = numerator.mean(2, keepdim=True)
    overall = variance.flatten(1).mean(1).view(-1, *[1] * (variance.dim() - 1))
    tiny = torch.finfo(image.dtype).tiny  # a constant image: no contrast anywhere, every descriptor 1
    low = (overall * VARIANCE_RANGE[0]).clamp_min(tiny)
    variance = variance.clamp(min=low, max=torch.maximum(overall * VARIANCE_RANGE[1], low))
    return torch.exp(-numerator / variance).flatten(1, 2)
