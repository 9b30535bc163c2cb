"""Real anatomies from label maps alone, onto the common 2 mm grid: SynthSeg's training label maps
(FreeSurfer ``aseg`` labels, 1 mm, each subject in its own space), or any folder of whole-brain label
maps of that convention. Each map is centred on its brain's centroid (as the anatomy builder centres
the donors) and resampled (nearest) onto the grid. Only the aseg structures SynthSeg segments are
kept: its extra-cerebral generation labels (skull, scalp, eyes: values of 100 and above; the donors'
renderings have none) and small extras (vessels, lesions, optic chiasm) become background, or the
brain's inside where they are enclosed (``grid.with_tissue``)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np

from ...errors import InputError
from ...files.nifti import nifti_image
from .grid import centroid_shift, labels_on_grid

#: the aseg structures SynthSeg segments (its ``synthseg-labels-table.txt``): what the loss and Dice score
ASEG_STRUCTURES: tuple[int, ...] = (2, 3, 4, 5, 7, 8, 10, 11, 12, 13, 14, 15, 16, 17, 18, 24, 26, 28)
ASEG_STRUCTURES += (41, 42, 43, 44, 46, 47, 49, 50, 51, 52, 53, 54, 58, 60)
SUFFIXES = (".nii.gz", ".nii")


def label_map_names(folder: str | Path) -> dict[str, Path]:
    """The label maps of ``folder`` by name (file name without its suffix), sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(
            f"label map folder {folder} not found: give the folder of aseg label maps (e.g. SynthSeg's "
            f"data/training_label_maps; docs: guides/anatomies)"
        )
    found = {}
    for path in sorted(folder.iterdir()):
        suffix = next((s for s in SUFFIXES if path.name.endswith(s)), None)
        if suffix and path.is_file():
            found[path.name[: -len(suffix)]] = path
    if not found:
        raise InputError(f"{folder} holds no label maps (*.nii.gz or *.nii)")
    return found


def read_label_map(path: str | Path) -> np.ndarray:
    """The label map at ``path`` on the common grid, int64, the aseg structures only."""
    try:
        image = nifti_image(path)
        data = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises several types for a damaged file
        raise InputError(f"{path}: not a readable NIfTI label map ({error})") from None
    if data.ndim != 3:
        raise InputError(f"{path}: a label map is one 3D volume, got shape {data.shape}")
    if not np.all(np.isfinite(data)) or not np.array_equal(data, np.round(data)):
        raise InputError(f"{path}: label values must be whole numbers; this looks like an intensity image")
    labels = np.where(np.isin(data, ASEG_STRUCTURES), data, 0).astype(np.int16)
    if not labels.any():
        raise InputError(f"{path}: none of the aseg structures' labels ({', '.join(map(str, ASEG_STRUCTURES))}) in it")
    shifted = nib.Nifti1Image(labels, image.affine)
    return labels_on_grid(shifted, centroid_shift(image, labels)).astype(np.int64)
