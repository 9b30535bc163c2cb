"""NIfTI in and out (nibabel), and warp export in the ITK/ANTs convention.

Volumes are read as ``[1, C, *S]`` tensors in the file's voxel order (no reorientation: the
voxel-to-world affine carries the orientation, and the solver works through it).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import torch

#: NIfTI intent code for a vector-valued image (what ITK reads as a displacement field).
NIFTI_INTENT_VECTOR = 1007
#: World RAS (NIfTI) to LPS (ITK/DICOM): flip the first two axes.
RAS_TO_LPS = (-1.0, -1.0, 1.0)


class InputError(ValueError):
    """Bad user input (missing file, wrong dimensionality, mismatched shapes...)."""


@dataclass
class Volume:
    """A loaded image: ``data`` ``[1, C, *S]``, voxel-to-world ``affine`` ``[d+1, d+1]`` (mm, RAS)."""

    data: torch.Tensor
    affine: torch.Tensor
    header: nib.Nifti1Header
    path: Path
    file_shape: tuple[int, ...] = ()  # as stored, e.g. (X, Y, 1) for a 2D slice kept in 3D
    file_affine: np.ndarray | None = None  # the file's 4x4 (a 2D slice keeps its thickness and position)

    @property
    def dims(self) -> int:
        return self.data.dim() - 2

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.data.shape[2:])


def drop_axis_affine(affine, axis: int):
    """The 3x3 affine of a 2D image: a 4x4 NIfTI affine without voxel axis ``axis`` (the slice
    axis) and its world row of the same index. Works on numpy arrays and torch tensors."""
    keep = [n for n in range(3) if n != axis] + [3]
    return affine[keep][:, keep]


def _reduce_affine(affine: np.ndarray, dims: int) -> np.ndarray:
    """The ``(d+1) x (d+1)`` part of a NIfTI 4x4 affine for a ``d``-dimensional image."""
    return affine if dims == 3 else drop_axis_affine(affine, 2)


def load_volume(path: str | Path, kind: str = "image") -> Volume:
    """Read a 2D or 3D NIfTI file (a trailing axis of length 1 is dropped; a 4th axis is channels).

    ``kind`` is ``image`` (float32) or ``label`` (int64, values must be whole numbers).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    try:
        image = nib.load(str(path))
        array = np.asanyarray(image.dataobj)
    except Exception as error:  # nibabel raises many types for unreadable files
        raise InputError(f"cannot read {path} as NIfTI: {error}") from None
    if array.size == 0:
        raise InputError(f"{path} is empty (shape {array.shape})")
    while array.ndim > 2 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2 or array.ndim == 3:
        array = array[None]
    elif array.ndim == 4 and kind == "image":
        array = np.moveaxis(array, -1, 0)
    else:
        raise InputError(f"{path} has shape {array.shape}; expected a 2D or 3D {kind}")
    dims = array.ndim - 1
    if kind == "label":
        if not np.all(np.isfinite(array)) or not np.allclose(array, np.round(array)):
            raise InputError(f"{path} is not a label map: its values are not all whole numbers")
        tensor = torch.from_numpy(np.round(array).astype(np.int64))
    else:
        tensor = torch.from_numpy(np.asarray(array, dtype=np.float32))
        if not torch.isfinite(tensor).all():
            raise InputError(f"{path} contains NaN or infinite values")
        if float(tensor.max() - tensor.min()) == 0.0:
            raise InputError(f"{path} is constant (every voxel is {float(tensor.max())}): nothing to register")
    affine = torch.from_numpy(_reduce_affine(image.affine, dims)).to(torch.float64)
    return Volume(data=tensor.unsqueeze(0), affine=affine, header=image.header, path=path,
                  file_shape=tuple(image.shape), file_affine=image.affine)


def _full_affine(affine: torch.Tensor) -> np.ndarray:
    """A 4x4 NIfTI affine from a 3x3 (2D) or 4x4 one."""
    affine = affine.detach().cpu().double().numpy()
    if affine.shape == (4, 4):
        return affine
    full = np.eye(4)
    keep = [0, 1, 3]
    full[np.ix_(keep, keep)] = affine
    return full


def _nifti(array: np.ndarray, reference: Volume, header: nib.Nifti1Header) -> nib.Nifti1Image:
    """A NIfTI image in the reference's space whose qform and sform both hold its affine (so every
    reader agrees)."""
    full = reference.file_affine if reference.file_affine is not None else _full_affine(reference.affine)
    image = nib.Nifti1Image(array, full, header)
    image.set_qform(full, code=1)
    image.set_sform(full, code=1)
    return image


def save_volume(data: torch.Tensor, reference: Volume, path: str | Path, kind: str = "image") -> None:
    """Write ``[C, *S]`` or ``[*S]`` data with the reference's affine and header (its space)."""
    array = data.detach().cpu().numpy()
    if array.ndim == reference.dims + 1:
        array = array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
    if array.size == int(np.prod(reference.file_shape)):
        array = array.reshape(reference.file_shape)  # keep singleton axes as the user stored them
    dtype = np.int32 if kind == "label" else np.float32
    header = reference.header.copy()
    header.set_data_dtype(dtype)
    nib.save(_nifti(array.astype(dtype), reference, header), str(path))


def save_itk_displacement(displacement_mm: torch.Tensor, reference: Volume, path: str | Path) -> None:
    """Write a displacement field ``[d, *S]`` (world mm, RAS components, on the reference grid)
    as ITK/ANTs read it: 5D NIfTI ``(X, Y, Z, 1, d)``, vector intent, LPS components, such that
    a fixed-space point ``p`` maps to ``p + u(p)`` in the moving image's space.
    """
    dims = displacement_mm.shape[0]
    field = displacement_mm.detach().cpu().double().numpy()
    flips = np.array(RAS_TO_LPS[:dims]).reshape(dims, *([1] * dims))
    field = np.moveaxis(field * flips, 0, -1)  # [*S, d]
    if dims == 2:  # ITK reads this as a 2D field, also when the image was stored as (X, Y, 1)
        field = field[:, :, None, None, :]
    else:
        field = field[:, :, :, None, :]
    header = nib.Nifti1Header()
    header.set_intent(NIFTI_INTENT_VECTOR)
    image = _nifti(field.astype(np.float32), reference, header)
    image.header.set_intent(NIFTI_INTENT_VECTOR)
    nib.save(image, str(path))
