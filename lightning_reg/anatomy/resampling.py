"""Each subject onto the common grid (``data/brains/grid.py``): its world moved so the labelled
centroid is at the origin, then resampled; and the CSV of pairs the data modules read."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to

from ..data.brains.grid import GRID_SHAPE, grid_affine


def centroid_shift(image: nib.spatialimages.SpatialImage, labels: np.ndarray) -> np.ndarray:
    """4x4 translation (mm) that moves the labelled voxels' centroid to the world origin."""
    centroid = image.affine[:3, :3] @ np.argwhere(labels > 0).mean(0) + image.affine[:3, 3]
    shift = np.eye(4)
    shift[:3, 3] = -centroid
    return shift


def shifted(image: nib.spatialimages.SpatialImage, shift: np.ndarray) -> nib.Nifti1Image:
    """``image`` with ``shift`` applied to its world coordinates (the voxels untouched)."""
    return nib.Nifti1Image(np.asanyarray(image.dataobj), shift @ image.affine)


def on_grid(image: nib.spatialimages.SpatialImage, order: int) -> nib.Nifti1Image:
    """``image`` resampled onto the common grid (``order`` 0 for labels, 1 for intensities)."""
    return resample_from_to(image, (GRID_SHAPE, grid_affine()), order=order, mode="constant", cval=0)


def labels_on_grid(image: nib.spatialimages.SpatialImage, shift: np.ndarray) -> np.ndarray:
    """A label image, its world moved by ``shift``, on the common grid (nearest, int16)."""
    return np.asanyarray(on_grid(shifted(image, shift), order=0).dataobj).astype(np.int16)


def intensities_on_grid(image: nib.spatialimages.SpatialImage, shift: np.ndarray) -> np.ndarray:
    """An intensity image, its world moved by ``shift``, on the common grid (linear), scaled to [0, 1]."""
    data = np.asanyarray(on_grid(shifted(image, shift), order=1).dataobj).astype(np.float32)
    return np.clip(data / max(float(data.max()), 1e-8), 0, 1)


def write_pairs(path: Path, pairs: list[tuple[str, str]], image: str, labels: str) -> None:
    """The CSV of test pairs ``PairsDataModule`` reads; ``image`` and ``labels`` are paths relative to
    the CSV with ``{subject}`` in them."""
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["fixed", "moving", "fixed_seg", "moving_seg", "split"])
        for fixed, moving in pairs:
            writer.writerow(
                [
                    image.format(subject=fixed),
                    image.format(subject=moving),
                    labels.format(subject=fixed),
                    labels.format(subject=moving),
                    "test",
                ]
            )
