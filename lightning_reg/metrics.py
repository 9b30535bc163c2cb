"""Registration metrics: Dice (torchmetrics), HD95, folding percent, SDlogJ and the target
registration error of landmarks."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from scipy import ndimage
from scipy.spatial import cKDTree
from torchmetrics.functional.segmentation import dice_score


def label_values(fixed_seg: torch.Tensor, background: int = 0) -> torch.Tensor:
    """The foreground labels present in ``fixed_seg`` (sorted)."""
    values = torch.unique(fixed_seg)
    return values[values != background]


def dice_per_label(fixed_seg: torch.Tensor, warped_seg: torch.Tensor,
                   labels: torch.Tensor | None = None) -> dict[int, float]:
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

    scores = dice_score(to_index(warped_seg), to_index(fixed_seg), num_classes=labels.numel() + 1,
                        include_background=False, average="none", input_format="index")
    return {int(label): float(score) for label, score in zip(labels, scores.reshape(-1))}


def _surface(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, border_value=0)


def _label_boxes(seg: np.ndarray, labels: np.ndarray) -> list:
    """The bounding box (tuple of slices, or None when absent) of each of ``labels`` in ``seg``: one
    pass over the volume, so the per-label work below scales with each structure, not the image."""
    position = np.clip(np.searchsorted(labels, seg), 0, max(len(labels) - 1, 0))
    index = np.where(labels[position] == seg, position + 1, 0) if len(labels) else np.zeros_like(seg, int)
    return ndimage.find_objects(index, max_label=len(labels))


def _union_box(first: tuple, second: tuple, shape: Sequence[int]) -> tuple:
    """The smallest box holding both boxes and one voxel around them (clipped to the image)."""
    return tuple(slice(max(min(a.start, b.start) - 1, 0), min(max(a.stop, b.stop) + 1, size))
                 for a, b, size in zip(first, second, shape))


def hd95(fixed_seg: torch.Tensor, warped_seg: torch.Tensor, spacing: Sequence[float] | None = None,
         labels: torch.Tensor | None = None) -> float:
    """Mean over labels of the symmetric 95th-percentile Hausdorff distance (mm with ``spacing``).

    Written here because torchmetrics' Hausdorff distance has no percentile. Exact Euclidean
    distances from each surface voxel to the nearest surface voxel of the other map, by scipy's
    k-d tree (the same values as a distance transform of the surfaces, without one over the
    volume); surfaces are found on the box around both maps' copies of each label. Labels missing
    from either map are skipped.
    """
    fixed = fixed_seg.squeeze().cpu().numpy()
    warped = warped_seg.squeeze().cpu().numpy()
    labels = np.sort((label_values(fixed_seg) if labels is None else labels).cpu().numpy())
    scale = np.ones(fixed.ndim) if spacing is None else np.asarray([float(s) for s in spacing])
    distances = []
    for label, box_fixed, box_warped in zip(labels, _label_boxes(fixed, labels), _label_boxes(warped, labels)):
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


def sdlogj(jacobian_determinant: torch.Tensor, floor: float = 1e-9) -> float:
    """Standard deviation of ``log(max(det J, floor))`` over voxels."""
    return float(torch.log(jacobian_determinant.clamp_min(floor)).std())


def target_registration_error(mapped: torch.Tensor, moving: torch.Tensor) -> dict[str, float]:
    """Distances (mm) between fixed landmarks mapped into the moving image (``[N, d]``, world) and
    the moving landmarks they correspond to (``[N, d]``): mean, standard deviation, median, 95th
    percentile and largest, over the ``N`` landmarks."""
    distances = (mapped.double() - moving.double()).norm(dim=-1)
    return {"mean": float(distances.mean()), "std": float(distances.std(unbiased=False)),
            "median": float(distances.median()), "p95": float(torch.quantile(distances, 0.95)),
            "max": float(distances.max()), "count": int(distances.numel())}
