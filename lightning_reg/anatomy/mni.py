"""The held-out subjects pre-aligned to MNI space, as Learn2Reg pre-aligns its brains: each
subject's T1-like rendering affinely registered to the skull-stripped ICBM152 2009a T1 (nilearn),
its labels and renderings resampled into MNI coordinates. The pairs then start from a shared
affine frame instead of centroid alignment.

Writes, beside the DK folder::

    DIR/mni/<held-out>_labels.nii.gz      82 DK labels on the 2 mm grid, MNI world (nearest)
    DIR/mni/<held-out>_{t1like,t2like}.nii.gz   the renderings of images/ resampled there (linear)
    DIR/mni_pairs.csv                     the 6 ordered held-out pairs

The settings of the affine (MSE, scales 4/2, 100/50 iterations) were chosen on the training and
validation donors' renderings (overlap of their brain masks with the template's), not on the
held-out subjects.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from ..data.brains.cohort import HELD_OUT, held_out_pairs
from ..data.brains.grid import brain_mask, grid_affine, labels_on_grid
from ..data.brains.recipes import RECIPES
from ..files.nifti import nifti_image
from ..solver import register
from .resampling import intensities_on_grid, write_pairs
from .sources import ICBM152, read_member
from .tissue import probable_tissue

#: the pre-alignment: an affine of the renderings to the template, coarse levels only
AFFINE = {"transform": "affine", "similarity": "mse", "scales": [4, 2], "iterations": [100, 50]}


def mni_template(nilearn: Path) -> np.ndarray:
    """The ICBM152 2009a T1 on the common grid in MNI coordinates (no centring), in [0, 1], zero
    outside its brain (grey + white matter, closed and filled: :func:`brain_mask`)."""
    images = {
        name: nib.Nifti1Image.from_bytes(gzip.decompress(read_member(nilearn, ICBM152.format(name=name))))
        for name in ("t1", "gm", "wm")
    }
    grey, white = (np.asanyarray(images[name].dataobj).astype(np.float32) / 255 for name in ("gm", "wm"))
    tissue = nib.Nifti1Image(probable_tissue(grey, white), images["gm"].affine)
    mask = brain_mask(labels_on_grid(tissue, np.eye(4)) > 0)
    t1 = intensities_on_grid(images["t1"], np.eye(4)) * mask
    return t1 / max(float(t1.max()), 1e-8)


def _world_centroid(mask: np.ndarray) -> np.ndarray:
    affine = grid_affine()
    return affine[:3, :3] @ np.argwhere(mask).mean(0) + affine[:3, 3]


def to_template(template: np.ndarray, image: np.ndarray, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``arrays`` (on the common grid, centroid at the origin) resampled into the template's world
    by the affine that registers ``image`` to ``template``; arrays whose name ends in ``labels`` by
    nearest neighbour, the others linearly. The affine starts with the two centroids on each other."""
    fixed_affine = torch.as_tensor(grid_affine(), dtype=torch.float32)
    moving_affine = fixed_affine.clone()
    moving_affine[:3, 3] += torch.as_tensor(_world_centroid(template > 0), dtype=torch.float32)
    as_batch = lambda array: torch.as_tensor(np.ascontiguousarray(array))[None, None]  # noqa: E731
    result = register(
        as_batch(template).float(),
        as_batch(image).float(),
        **AFFINE,
        fixed_affine=fixed_affine[None],
        moving_affine=moving_affine[None],
    )
    out = {}
    for name, array in arrays.items():
        if name.endswith("labels"):
            out[name] = result.warp_labels(as_batch(array).long())[0, 0].numpy().astype(np.int16)
        else:
            out[name] = result.warp(as_batch(array).float())[0, 0].numpy().astype(np.float32)
    return out


def build_mni(out: Path, nilearn: Path, save) -> None:
    """Write ``mni/`` and ``mni_pairs.csv`` (module docstring) from the ``labels/`` and ``images/``
    the DK build wrote, with ``save(array, path)``."""
    template = mni_template(nilearn)
    for subject in HELD_OUT:
        arrays = {"labels": np.asanyarray(nifti_image(out / "labels" / f"{subject}.nii.gz").dataobj)}
        for recipe in RECIPES:
            arrays[recipe] = np.asanyarray(nifti_image(out / "images" / f"{subject}_{recipe}.nii.gz").dataobj)
        for name, array in to_template(template, arrays["t1like"], arrays).items():
            save(array, out / "mni" / f"{subject}_{name}.nii.gz")
    write_pairs(out / "mni_pairs.csv", held_out_pairs(), "mni/{subject}_t1like.nii.gz", "mni/{subject}_labels.nii.gz")
