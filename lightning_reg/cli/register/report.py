"""``metrics.json`` of ``lightning-reg register``: what was solved with what, and how well, built
from values alone (no file is read or written here, so it is tested on tensors)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import warn
from ...evaluation.metrics import target_registration_error
from ...solver import RegistrationResult, stages
from ...solver.geometry.inverse import INVERSE_CONSISTENT_VOXELS, InverseField
from ...solver.geometry.spatial import voxel_spacing
from .request import RegisterRequest

#: above this share of fixed voxels (%) with a Jacobian determinant <= 0, register warns that the
#: warp folds (DIO's free-form brains: 0.86 %; a greedy or SyN warp: 0)
FOLDING_WARNING_PERCENT = 1.0


@dataclass
class Measured:
    """The numbers of one registered pair: its evaluation row (``evaluation.rows.pair_rows``), the
    label maps' Dice and HD95 before registration, and the landmarks mapped (``None`` when absent)."""

    row: dict
    before: dict | None = None
    landmarks: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None  # fixed, mapped, moving (mm)


def inverse_report(inverse: InverseField, wanted: str, consistency_p95_voxels: float) -> dict:
    """The inverse's method, residual, consistency, whether it is good (``converged``: warp then
    inverse brings 95 % of the fixed voxels back within :data:`INVERSE_CONSISTENT_VOXELS`) and
    written (``wanted``: the ``--inverse-warp`` choice); a warning when it is not good."""
    residual = float(inverse.residual_voxels[0])
    converged = consistency_p95_voxels <= INVERSE_CONSISTENT_VOXELS
    written = wanted == "write" or (wanted == "converged" and converged)
    if not converged:
        what = "written anyway (--inverse-warp converged or skip leaves it out)" if written else "not written"
        warn(
            f"the inverse warp is not the warp's inverse: warp then inverse moves 5 % of the fixed voxels more "
            f"than {consistency_p95_voxels:.3g} voxels (above {INVERSE_CONSISTENT_VOXELS:g}; its own largest "
            f"residual {residual:.2g} voxels after {inverse.iterations} iterations), so 1InverseWarp.nii.gz maps "
            f"some points wrongly (a folding or very large warp has no exact inverse there); {what}"
        )
    return {
        "method": inverse.method,
        "residual_voxels": residual,
        "iterations": inverse.iterations,
        "consistency_p95_voxels": consistency_p95_voxels,
        "converged": converged,
        "written": written,
    }


def warn_folding(folding_percent: float) -> None:
    """A warning when more than :data:`FOLDING_WARNING_PERCENT` of the fixed voxels fold."""
    if folding_percent > FOLDING_WARNING_PERCENT:
        warn(
            f"the warp folds: {folding_percent:.3g} % of the fixed voxels have a Jacobian determinant <= 0 "
            f"(above {FOLDING_WARNING_PERCENT:g} %), so it is not one-to-one there; a smaller --learning-rate, "
            f"a diffeomorphic --transform (greedy, svf, syn) or a --regularizer avoids it"
        )


def build_report(
    request: RegisterRequest,
    described: dict,
    result: RegistrationResult,
    measured: Measured,
    seconds: float,
    inverse: InverseField | None,
) -> dict:
    """What ``metrics.json`` says of one registration (its provenance and phases are added by the
    command): ``described`` is the solver's settings (``RegistrationLayer.describe``)."""
    row = measured.row
    linear, transform = stages(described["transform"])
    report = {
        "transform": transform,
        "similarity": described["similarity"],
        "init": linear,
        "scales": described["scales"],
        "iterations": described["iterations"],
        "checkpoint": str(request.checkpoint) if request.checkpoint else None,
        "prompt_labels": described["prompt_labels"],
        "prompt_weight": described["prompt_weight"],
        "masks": {
            "fixed": request.fixed_mask and str(request.fixed_mask),
            "moving": request.moving_mask and str(request.moving_mask),
        },
        "folding_percent": row["folding_percent"],
        "ndv_percent": row["ndv_percent"],
        "sdlogj": row["sdlogj"],
        "seconds": seconds,
        "stationarity": float(result.stationarity[0]) if result.stationarity is not None else None,
        "label_mode": request.label_mode if measured.before is not None else None,
    }
    warn_folding(row["folding_percent"])
    if inverse is not None:
        voxel = float(voxel_spacing(result.frames.fixed_affine[0]).prod() ** (1 / result.grid.shape[-1]))
        report["inverse"] = inverse_report(inverse, request.inverse_warp, row["inverse_consistency_p95_mm"] / voxel)
        report["inverse_consistency_mm"] = {
            "mean": row["inverse_consistency_mm"],
            "p95": row["inverse_consistency_p95_mm"],
        }
    if measured.landmarks is not None:
        fixed_points, mapped, moving_points = measured.landmarks
        report["tre_mm"] = {
            "before": target_registration_error(fixed_points, moving_points),
            "after": target_registration_error(mapped, moving_points),
        }
    if measured.before is not None:
        report.update(
            dice=row["dice"],
            dice_before=measured.before["dice"],
            hd95=row["hd95"],
            hd95_before=measured.before["hd95"],
            dice_per_label={key[len("dice_") :]: value for key, value in row.items() if key.startswith("dice_")},
        )
    return report
