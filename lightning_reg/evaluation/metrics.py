"""Registration metrics: Dice, HD95, folding percent, non-diffeomorphic volume,
SDlogJ and the target registration error of landmarks."""

from __future__ import annotations

import itertools
import math
from typing import Sequence

import numpy as np
import torch


def label_values(fixed_seg: torch.Tensor, background: int = 0) -> torch.Tensor:
    """The foreground labels present in ``fixed_seg`` (sorted)."""
    values = torch.unique(fixed_seg)
    return values[values != background]


def dice_per_label(
    fixed_seg: torch.Tensor, warped_seg: torch.Tensor, labels: torch.Tensor | None = None
) -> dict[int, float]:
    """Dice of each foreground label of ``fixed_seg`` (``[1, 1, *S]`` int) against ``warped_seg``."""
    if fixed_seg.shape != warped_seg.shape:
        raise ValueError(f"label maps differ in shape: {tuple(fixed_seg.shape)} vs {tuple(warped_seg.shape)}")
    labels = label_values(fixed_seg) if labels is None else labels
    if labels.numel() == 0:
        return {}
    # index 0 = background/other, 1..K = the labels asked for
    lookup = torch.cat([torch.zeros(1, dtype=labels.dtype), labels])

    def to_index(seg: torch.Tensor) -> torch.Tensor:
        index = torch.searchsorted(lookup[1:].contiguous(), seg.long().contiguous()) + 1
        index = index.clamp_max(lookup.numel() - 1)
        return torch.where(lookup[index] == seg, index, torch.zeros_like(index))[:, 0]

    # by hand, from the joint histogram of the two index maps: torchmetrics' dice_score one-hot encodes
    # every class (0.86 s for 83 labels on 96x112x96, most of lightning-reg register's measuring; this
    # takes 0.03 s) and its import costs a classical registration 1.4 s
    classes = labels.numel() + 1
    joint = (
        torch.bincount((to_index(fixed_seg) * classes + to_index(warped_seg)).flatten(), minlength=classes * classes)
        .view(classes, classes)
        .double()
    )
    overlap, total = joint.diagonal()[1:], joint.sum(0)[1:] + joint.sum(1)[1:]
    scores = 2 * overlap / total.clamp_min(1)
    return {int(label): float(score) for label, score in zip(labels, scores)}


def _surface(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage  # scipy takes 0.25 s to import: only HD95 pays it, not every command

    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def _label_boxes(seg: np.ndarray, labels: np.ndarray) -> list:
    """The bounding box (tuple of slices, or None when absent) of each of ``labels`` in ``seg``: one
    pass over the volume, so the per-label work below scales with each structure, not the image."""
    from scipy import ndimage

    position = np.clip(np.searchsorted(labels, seg), 0, max(len(labels) - 1, 0))
    index = np.where(labels[position] == seg, position + 1, 0) if len(labels) else np.zeros_like(seg, int)
    return ndimage.find_objects(index, max_label=len(labels))


def _union_box(first: tuple, second: tuple, shape: Sequence[int]) -> tuple:
    """The smallest box holding both boxes and one voxel around them (clipped to the image)."""
    return tuple(
        slice(max(min(a.start, b.start) - 1, 0), min(max(a.stop, b.stop) + 1, size))
        for a, b, size in zip(first, second, shape)
    )


def hd95(
    fixed_seg: torch.Tensor,
    warped_seg: torch.Tensor,
    spacing: Sequence[float] | None = None,
    labels: torch.Tensor | None = None,
) -> float:
    """Mean over labels of the symmetric 95th-percentile Hausdorff distance (mm with ``spacing``).

    Written here because torchmetrics' Hausdorff distance has no percentile. Exact Euclidean
    distances from each surface voxel to the nearest surface voxel of the other map, by scipy's
    k-d tree (the same values as a distance transform of the surfaces, without one over the
    volume); surfaces are found on the box around both maps' copies of each label. Labels missing
    from either map are skipped.
    """
    from scipy.spatial import cKDTree

    fixed = fixed_seg.squeeze().cpu().numpy()
    warped = warped_seg.squeeze().cpu().numpy()
    values = np.sort((label_values(fixed_seg) if labels is None else labels).cpu().numpy())
    scale = np.ones(fixed.ndim) if spacing is None else np.asarray([float(s) for s in spacing])
    distances = []
    for label, box_fixed, box_warped in zip(values, _label_boxes(fixed, values), _label_boxes(warped, values)):
        if box_fixed is None or box_warped is None:
            continue
        box = _union_box(box_fixed, box_warped, fixed.shape)
        points_fixed = np.argwhere(_surface(fixed[box] == label)) * scale
        points_warped = np.argwhere(_surface(warped[box] == label)) * scale
        to_warped = cKDTree(points_warped).query(points_fixed)[0]
        to_fixed = cKDTree(points_fixed).query(points_warped)[0]
        distances.append(float(np.percentile(np.concatenate([to_warped, to_fixed]), 95)))
    return float(np.mean(distances)) if distances else float("nan")


def folding_percent(jacobian_determinant: torch.Tensor) -> float:
    """Percent of voxels whose Jacobian determinant is <= 0."""
    return float((jacobian_determinant <= 0).float().mean() * 100)


def _simplices(dims: int) -> list[list[tuple[int, ...]]]:
    """The simplices each voxel owns, as vertex offsets from it (array order): a corner triangle or
    tetrahedron towards each of its ``2^d`` neighbouring cells (the voxel and its neighbour along each
    axis) and, in 3D, the central tetrahedra of the cell behind it and of the cell ahead (the voxel
    and its three face-diagonal neighbours). Together: both ways of cutting every cell into 2
    triangles (either diagonal) or 5 tetrahedra, so each simplex counts half."""
    simplices = []
    for signs in itertools.product((1, -1), repeat=dims):
        simplices.append(
            [(0,) * dims] + [tuple(sign * (a == axis) for a in range(dims)) for axis, sign in enumerate(signs)]
        )
    if dims == 3:
        for sign in (1, -1):
            simplices.append([(0, 0, 0)] + [tuple(sign * (a != axis) for a in range(3)) for axis in range(3)])
    return simplices


def _determinant(rows: list[list[torch.Tensor]]) -> torch.Tensor:
    """Per voxel, the determinant of the 2x2 or 3x3 matrix whose entries are the tensors ``rows[i][j]``:
    written out, since ``torch.linalg.det`` on a million small matrices takes several times longer."""
    if len(rows) == 2:
        return rows[0][0] * rows[1][1] - rows[0][1] * rows[1][0]
    (a, b, c), (d, e, f), (g, h, i) = rows
    return a * (e * i - f * h) - b * (d * i - f * g) + c * (d * h - e * g)


def non_diffeomorphic_volume(displacement: torch.Tensor) -> float:
    """Non-diffeomorphic volume (NDV; in 2D, area NDA) of a map, percent of the grid's volume.

    ``displacement`` ``[d, *S]`` says how far each voxel goes, in voxels (array-order components). As
    Liu et al. (IJCV 2024) define it: the map is linear on each simplex of the two decompositions of
    every cell (``_simplices``); NDV is the volume of the simplices whose image is inverted, their
    share of the cell weighted by how much they are inverted (``-min(det J, 0)``), averaged over the
    two decompositions, over the voxels' volume; the displacement is extended past the edges by its
    edge values. Written here because the authors' package (GPL-3.0) pins old numpy and nibabel;
    on random folding fields it gives their numbers (README). Unlike folding % of central
    differences, it sees a voxel that jumps over its neighbours.
    """
    dims, shape = displacement.shape[0], displacement.shape[1:]
    extended = torch.nn.functional.pad(displacement.double()[None], (1, 1) * dims, mode="replicate")[0]
    padded = extended + torch.stack(
        torch.meshgrid(
            *[torch.arange(-1, n + 1, dtype=torch.float64, device=displacement.device) for n in shape], indexing="ij"
        )
    )

    def at(offset: tuple[int, ...]) -> torch.Tensor:
        window = (slice(None), *(slice(1 + o, 1 + o + n) for o, n in zip(offset, shape)))
        return padded[window]

    inverted = torch.zeros(shape, dtype=torch.float64, device=displacement.device)
    for simplex in _simplices(dims):
        reference = torch.linalg.det(
            torch.tensor([[b - a for a, b in zip(simplex[0], v)] for v in simplex[1:]], dtype=torch.float64).T
        )
        edges = [[at(v)[component] - at(simplex[0])[component] for v in simplex[1:]] for component in range(dims)]
        signed = _determinant(edges) / reference
        inverted = inverted + 0.5 * (-signed).clamp_min(0) * abs(float(reference)) / math.factorial(dims)
    return float(inverted.sum() / inverted.numel() * 100)


def sdlogj(jacobian_determinant: torch.Tensor, floor: float = 1e-9) -> float:
    """Standard deviation of ``log(max(det J, floor))`` over voxels."""
    return float(torch.log(jacobian_determinant.clamp_min(floor)).std())


def target_registration_error(mapped: torch.Tensor, moving: torch.Tensor) -> dict[str, float]:
    """Distances (mm) between fixed landmarks mapped into the moving image (``[N, d]``, world) and
    the moving landmarks they correspond to (``[N, d]``): mean, standard deviation, median, 95th
    percentile and largest, over the ``N`` landmarks."""
    distances = (mapped.double() - moving.double()).norm(dim=-1)
    return {
        "mean": float(distances.mean()),
        "std": float(distances.std(unbiased=False)),
        "median": float(distances.median()),
        "p95": float(torch.quantile(distances, 0.95)),
        "max": float(distances.max()),
        "count": int(distances.numel()),
    }
