"""The numbers of one registered pair, from what is in memory: its evaluation row, the labels as the
headers alone align them, the landmarks mapped."""

from __future__ import annotations

import torch

from ...evaluation.before import labels_before
from ...evaluation.rows import pair_rows
from ...solver import RegistrationResult
from ...solver.geometry.inverse import InverseField
from ...solver.geometry.spatial import voxel_spacing
from .load import Loaded
from .report import Measured
from .request import RegisterRequest


def warped_labels(request: RegisterRequest, loaded: Loaded, result: RegistrationResult) -> torch.Tensor | None:
    """The moving label map on the fixed grid ``[1, 1, *S]`` (``--label-mode``), ``None`` without labels."""
    if loaded.fixed_seg is None or loaded.moving_seg is None:
        return None
    return result.warp_labels(loaded.moving_seg.data.to(request.device), mode=request.label_mode).cpu()


def measure(
    request: RegisterRequest,
    loaded: Loaded,
    result: RegistrationResult,
    seconds: float,
    inverse: InverseField | None,
    warped_seg: torch.Tensor | None,
) -> Measured:
    """The pair's numbers; ``warped_seg``: :func:`warped_labels`."""
    fixed, fixed_seg, moving_seg = loaded.fixed, loaded.fixed_seg, loaded.moving_seg
    batch = {"fixed": fixed.data, "fixed_affine": fixed.affine[None]}
    if fixed_seg is not None and moving_seg is not None:
        batch.update(fixed_seg=fixed_seg.data, moving_seg=moving_seg.data)
    full = request.metrics == "all"
    (row,) = pair_rows(batch, result, seconds, warped_seg=warped_seg, inverse=inverse, full=full)
    before = None
    if fixed_seg is not None and moving_seg is not None:
        spacing = voxel_spacing(fixed.affine).tolist()
        header = _header_map(loaded)
        before = labels_before(fixed_seg.data, moving_seg.data, header, request.label_mode, spacing, with_hd95=full)
    landmarks = None
    if loaded.landmarks is not None:
        fixed_points, moving_points = loaded.landmarks
        mapped = result.map_points_mm(fixed_points[None].to(result.grid.device))[0].cpu()
        landmarks = (fixed_points, mapped, moving_points)
    return Measured(row, before, landmarks)


def _header_map(loaded: Loaded) -> RegistrationResult | None:
    """The map the headers give the pair; ``None`` when both images share one grid (nothing to resample)."""
    fixed, moving = loaded.fixed, loaded.moving
    if fixed.data.shape == moving.data.shape and torch.equal(fixed.affine, moving.affine):
        return None
    return RegistrationResult.from_headers(fixed.shape, moving.shape, fixed.affine, moving.affine)
