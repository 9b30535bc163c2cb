"""Fixtures of the command-line tests."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from lightning_reg.data.synthetic import warped_pair


@pytest.fixture
def pair(tmp_path) -> dict[str, Path]:
    """A small 3D pair with labels, 1.5 mm voxels, in ``tmp_path/inputs``, and a file of the user's."""
    folder = tmp_path / "inputs"
    folder.mkdir()
    images = warped_pair((20, 24, 16), magnitude=2.0, seed=4)
    affine = np.diag([1.5, 1.5, 1.5, 1.0])
    paths = {}
    for key in ("fixed", "moving", "fixed_seg", "moving_seg"):
        array = images[key][0, 0].numpy()
        paths[key] = folder / f"{key}.nii.gz"
        nib.save(nib.Nifti1Image(array.astype(np.int16) if "seg" in key else array, affine), paths[key])
    (tmp_path / "notes.txt").write_text("the user's notes")
    return paths
