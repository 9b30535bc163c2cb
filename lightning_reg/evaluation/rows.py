"""Per-pair evaluation rows (Dice, HD95, folding, NDV, SDlogJ, inverse consistency, TRE, seconds) of
a registration result, their means, their CSV, and the rows of several processes (DDP) brought
together; shared by ``lightning-reg register``, the module's validation/test and the benchmarks."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

import torch
import torch.distributed as dist

from ..files.output_folder import atomic_path
from ..solver import RegistrationResult
from ..solver.geometry.inverse import InverseField
from ..solver.geometry.spatial import voxel_spacing
from ..solver.result import LABEL_MODE
from .metrics import dice_per_label, folding_percent, hd95, non_diffeomorphic_volume, sdlogj, target_registration_error

if TYPE_CHECKING:
    import lightning as L


def pair_rows(
    batch: dict,
    result: RegistrationResult,
    seconds: float,
    label_mode: str = LABEL_MODE,
    warped_seg: torch.Tensor | None = None,
    inverse: InverseField | None = None,
    full: bool = True,
) -> list[dict]:
    """One row per pair of ``batch``: ``id``, ``seconds`` (per pair), ``folding_percent``,
    ``ndv_percent`` (non-diffeomorphic volume), ``sdlogj``; with label maps, ``dice`` (mean over
    labels), ``hd95`` (mm when the batch has affines) and ``dice_<label>``; with ``inverse``
    (:meth:`RegistrationResult.inverse_field`), ``inverse_consistency_mm`` and its ``_p95``; with
    ``fixed_landmarks`` and ``moving_landmarks`` in the batch (one ``[N, d]`` world-mm tensor per
    pair), ``tre_mm`` and ``tre_before_mm`` (mean target registration error after and before).
    Labels are warped with ``label_mode``, unless given warped (``warped_seg`` ``[B, 1, *S]``).
    ``full=False`` leaves out the slow figures, HD95 and NDV (``None``): about 0.7 s of a 3D brain."""
    determinant = result.jacobian_determinant()
    displacement = result.displacement_voxels() if full else None
    consistency = None if inverse is None else result.inverse_consistency_mm(result.inverse(inverse))
    rows = []
    for index in range(len(batch["fixed"])):
        row = {
            "id": pair_id(batch, index),
            "seconds": seconds,
            "folding_percent": folding_percent(determinant[index]),
            "ndv_percent": None if displacement is None else non_diffeomorphic_volume(displacement[index]),
            "sdlogj": sdlogj(determinant[index]),
        }
        if consistency is not None:
            row["inverse_consistency_mm"] = float(consistency[0][index])
            row["inverse_consistency_p95_mm"] = float(consistency[1][index])
        if batch.get("fixed_landmarks") is not None and batch.get("moving_landmarks") is not None:
            fixed_points, moving_points = batch["fixed_landmarks"][index], batch["moving_landmarks"][index]
            mapped = result.pair(index).map_points_mm(fixed_points[None].to(result.grid.device))[0].cpu()
            row["tre_mm"] = target_registration_error(mapped, moving_points)["mean"]
            row["tre_before_mm"] = target_registration_error(fixed_points, moving_points)["mean"]
        if "fixed_seg" in batch and "moving_seg" in batch:
            fixed_seg = batch["fixed_seg"][index : index + 1]
            warped = (
                warped_seg[index : index + 1]
                if warped_seg is not None
                else result.pair(index).warp_labels(batch["moving_seg"][index : index + 1], mode=label_mode)
            )
            scores = dice_per_label(fixed_seg, warped)
            row["dice"] = sum(scores.values()) / max(len(scores), 1)
            row["hd95"] = hd95(fixed_seg, warped, spacing=_spacing(batch, index)) if full else None
            row.update({f"dice_{label}": score for label, score in scores.items()})
        rows.append(row)
    return rows


def pair_id(batch: dict, index: int) -> str:
    """The id of pair ``index`` of ``batch`` (its position when the batch has no ids)."""
    ids = batch.get("id")
    return str(ids[index]) if ids is not None else str(index)


SUMMARY_KEYS = (
    "dice",
    "hd95",
    "folding_percent",
    "ndv_percent",
    "sdlogj",
    "inverse_consistency_mm",
    "tre_mm",
    "seconds",
)


def column(rows: list[dict], key: str) -> list[float]:
    """The values of ``key`` in the rows that have a number (not NaN) for it."""
    return [row[key] for row in rows if key in row and row[key] == row[key]]


def mean_rows(rows: list[dict], keys=SUMMARY_KEYS) -> dict[str, float]:
    """The mean of each key over the rows that have a number (not NaN) for it."""
    return {key: sum(values) / len(values) for key in keys if (values := column(rows, key))}


def write_rows(path: Path, rows: list[dict]) -> None:
    """A CSV of the rows (columns: the union of their keys, ``id`` first)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary, open(temporary, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def gather_rows(trainer: "L.Trainer", rows: list[dict]) -> list[dict]:
    """Every process's per-pair rows, in the order of the pairs; call it on all processes.

    Process ``r`` of ``w`` evaluates pairs ``r, r + w, r + 2w, ...`` (``data/sampling.py``), so taking
    one row from each process in turn restores the order. Lightning's strategies gather tensors
    only; rows hold strings, hence torch's object gathering.
    """
    if trainer.world_size == 1 or not (dist.is_available() and dist.is_initialized()):
        return list(rows)
    gathered: list[list[dict] | None] = [None] * trainer.world_size
    dist.all_gather_object(gathered, list(rows))
    parts = [part or [] for part in gathered]
    longest = max(len(part) for part in parts)
    return [part[index] for index in range(longest) for part in parts if index < len(part)]


def _spacing(batch: dict, index: int) -> list[float] | None:
    affine = batch.get("fixed_affine")
    return None if affine is None else voxel_spacing(affine[index]).tolist()
