"""Real T1 intensities for the contrast test: fsaverage's ``brain.mgz``, the ICBM152 2009a template
(nilearn) and the CAT12 template (deepmriprep), each with its grey/white-matter map, on the common
grid. The learned models only ever saw renderings; here they meet scanner intensities (averaged
over many people, but measured, not drawn). The same tissue maps rendered with the T1-like recipe
are the clean reference of the same pairs.

Writes, beside the DK folder::

    DIR/tissue/<subject>_labels.nii.gz    0 background, 1 grey matter, 2 white matter (int16)
    DIR/tissue/<subject>_T1.nii.gz        the real T1, in [0, 1]
    DIR/tissue/<subject>_t1like.nii.gz    the tissue map rendered with the T1-like recipe
    DIR/tissue_pairs.csv                  every ordered pair of the three (fixed, moving, ...)

Each subject is centred on the centroid of its tissue map, as the DK subjects on theirs.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np

from ..data.brains.cohort import REAL_T1, tissue_pairs
from ..data.brains.grid import centroid_shift, labels_on_grid
from ..data.brains.recipes import render_recipe, tissue_means
from .resampling import intensities_on_grid, write_pairs
from .sources import CAT12_T1, CAT12_TISSUE, FSAVERAGE, ICBM152, read_member

#: FreeSurfer aseg codes by tissue (cortex 1000-1035 / 2000-2035 and 3 / 42 with the grey matter)
FREESURFER_GREY = (3, 42, 8, 47, 10, 11, 12, 13, 17, 18, 26, 49, 50, 51, 52, 53, 54, 58)
FREESURFER_WHITE = (2, 41, 7, 46, 16, 28, 60, 77, 85, 251, 252, 253, 254, 255)
#: seed of each subject's rendering noise and bias
RENDER_SEEDS = {subject: 9100 + number for number, subject in enumerate(REAL_T1)}


def freesurfer_tissue(codes: np.ndarray) -> np.ndarray:
    """Tissue labels of an ``aparc+aseg`` code map (ventricles, CSF and unknown codes: 0)."""
    grey = np.isin(codes, FREESURFER_GREY) | ((codes >= 1000) & (codes < 3000))
    return np.where(grey, 1, np.where(np.isin(codes, FREESURFER_WHITE), 2, 0)).astype(np.int16)


def probable_tissue(grey: np.ndarray, white: np.ndarray) -> np.ndarray:
    """Tissue labels of probability maps in [0, 1]: brain tissue where grey + white >= 0.5, labelled
    by the more probable of the two."""
    tissue = grey + white >= 0.5
    return np.where(tissue, np.where(grey >= white, 1, 2), 0).astype(np.int16)


def _image(data: bytes, mgz: bool = False) -> nib.spatialimages.SpatialImage:
    return (nib.MGHImage if mgz else nib.Nifti1Image).from_bytes(gzip.decompress(data))


def read_real_t1(freesurfer: Path, nilearn: Path, deepmriprep: Path) -> dict[str, tuple]:
    """Per subject ``(tissue label image, T1 image)`` in its own world."""
    aparc = _image(read_member(freesurfer, FSAVERAGE.format(name="aparc+aseg")), mgz=True)
    brain = _image(read_member(freesurfer, FSAVERAGE.format(name="brain")), mgz=True)
    subjects = {"fsaverage": (nib.Nifti1Image(freesurfer_tissue(np.asanyarray(aparc.dataobj)), aparc.affine), brain)}
    icbm = {name: _image(read_member(nilearn, ICBM152.format(name=name))) for name in ("t1", "gm", "wm")}
    grey, white = (np.asanyarray(icbm[name].dataobj).astype(np.float32) / 255 for name in ("gm", "wm"))
    subjects["icbm152"] = (nib.Nifti1Image(probable_tissue(grey, white), icbm["gm"].affine), icbm["t1"])
    maps = _image(read_member(deepmriprep, CAT12_TISSUE))
    probabilities = np.asanyarray(maps.dataobj).astype(np.float32)
    labels = probable_tissue(probabilities[..., 0], probabilities[..., 1])
    subjects["cat12"] = (nib.Nifti1Image(labels, maps.affine), _image(read_member(deepmriprep, CAT12_T1)))
    return subjects


def build_tissue(out: Path, wheels: tuple[Path, Path, Path], save) -> dict[str, list[float]]:
    """Write the ``tissue/`` folder and ``tissue_pairs.csv`` (module docstring) with ``save(array,
    path)``; returns each subject's centroid (mm) in its own world."""
    centroids = {}
    for subject, (labels_image, t1_image) in read_real_t1(*wheels).items():
        labels = np.asanyarray(labels_image.dataobj)
        shift = centroid_shift(labels_image, labels)
        on = labels_on_grid(labels_image, shift)
        save(on, out / "tissue" / f"{subject}_labels.nii.gz")
        save(intensities_on_grid(t1_image, shift), out / "tissue" / f"{subject}_T1.nii.gz")
        rendered = render_recipe(on, tissue_means("t1like"), RENDER_SEEDS[subject])
        save(rendered, out / "tissue" / f"{subject}_t1like.nii.gz")
        centroids[subject] = (-shift[:3, 3]).round(3).tolist()
    write_pairs(
        out / "tissue_pairs.csv", tissue_pairs(), "tissue/{subject}_T1.nii.gz", "tissue/{subject}_labels.nii.gz"
    )
    return centroids
