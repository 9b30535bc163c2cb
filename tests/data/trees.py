"""Tiny dataset trees in the real layouts (real file names, NIfTI headers with oblique affines and
anisotropic spacing), written by the tests: Learn2Reg OASIS, neurite-oasis, BIDS, a CSV manifest."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import torch

from lightning_reg.data.synthetic import label_image, oblique_affine, random_labels

SHAPE = (20, 24, 18)
#: FreeSurfer aseg codes written into the BIDS label maps (1035 is a cortical parcel, not in 'aseg').
ASEG_CODES = (0, 2, 41, 17, 1035)


def write_scan(
    image_path: Path, seg_path: Path | None, seed: int, shape=SHAPE, affine=None, codes=None, seg_shape=None
) -> None:
    """A label map of 4 regions and its intensity image (scanner-like scale), same header."""
    generator = torch.Generator().manual_seed(seed)
    plane = tuple(n for n in shape if n > 1)  # a slice (X, Y, 1) is drawn in 2D
    labels = random_labels(plane, num_labels=4, smoothness=4.0, generator=generator)
    image = label_image(labels, generator)[0, 0].reshape(shape).numpy() * 400.0
    labels = labels.reshape(1, 1, *shape)
    affine = oblique_affine(origin=(10.0 + seed, -5.0, 3.0)) if affine is None else affine
    image_path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(image.astype(np.float32), affine), image_path)
    if seg_path is not None:
        seg = labels[0, 0].numpy()
        if codes is not None:
            seg = np.asarray(codes)[seg]
        if seg_shape is not None:
            seg = np.zeros(seg_shape, dtype=seg.dtype)
        seg_path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(seg.astype(np.int16), affine), seg_path)
