"""Intensity images onto the common grid (labels: ``data/brains/grid.py``, where the centring and
the resampling of label maps live, shared with the data modules); and the CSV of pairs they read."""

from __future__ import annotations

import csv
from pathlib import Path

import nibabel as nib
import numpy as np

from ..data.brains.grid import on_grid, shifted


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
