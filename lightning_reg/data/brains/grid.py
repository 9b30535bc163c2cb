"""The common 2 mm grid every subject of the real-anatomy folder is on (centroid at the world origin:
the translation that initialises registration), how a subject's label map is put onto it, and the
rendering label of the brain's unlabelled inside."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to
from scipy import ndimage

#: the common grid: RAS voxels of 2 mm, 96 x 112 x 96 (192 x 224 x 192 mm around the brain's centroid)
GRID_SHAPE = (96, 112, 96)
GRID_SPACING = 2.0
#: rendering label for the unlabelled inside of the brain (white matter, ventricles); never scored
TISSUE = 83


def grid_affine(shape: tuple[int, ...] = GRID_SHAPE, spacing: float = GRID_SPACING) -> np.ndarray:
    """RAS affine of the common grid, its centre at the world origin."""
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = -spacing * (np.asarray(shape) - 1) / 2
    return affine


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
