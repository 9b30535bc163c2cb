"""NIfTI in and out (nibabel), and warp export in the ITK/ANTs convention.

Volumes are read as ``[1, C, *S]`` tensors in the file's voxel order (no reorientation: the
voxel-to-world affine carries the orientation, and the solver works through it).
"""

from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import nibabel as nib
import numpy as np
import torch

from ..errors import InputError
from .output_folder import atomic_path, resolve_path

#: NIfTI intent code for a vector-valued image (what ITK reads as a displacement field).
NIFTI_INTENT_VECTOR = 1007
#: World RAS (NIfTI) to LPS (ITK/DICOM): flip the first two axes.
RAS_TO_LPS = (-1.0, -1.0, 1.0)
#: gzip level of displacement files: float32 fields barely compress (a 96x112x96 brain warp, 12.4 MB:
#: level 1, nibabel's, 11.5 MB in 0.37 s; level 0, stored, 12.4 MB in 0.02 s), and register writes
#: three of them
DISPLACEMENT_GZIP_LEVEL = 0


#: peak memory of ``register`` per voxel of the fixed image, bytes (measured: greedy LNCC 4/2/1 at
#: 96x112x96 and 160x192x160 peaked at 0.87 and 1.80 GB, about 240 bytes a voxel above the process)
BYTES_PER_VOXEL = 300
#: the share of the machine's memory the default ``max_voxels`` may use
MEMORY_SHARE = 0.75


def default_max_voxels() -> int:
    """The largest image (voxels x channels) read by default: what fits in ``MEMORY_SHARE`` of this
    machine's memory at ``BYTES_PER_VOXEL`` (63 million voxels on 23.5 GiB)."""
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not POSIX: assume 16 GiB
        memory = 16 * 2**30
    return int(memory * MEMORY_SHARE / BYTES_PER_VOXEL)


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


def check_size(path: Path, shape: tuple[int, ...], max_voxels: int | None) -> None:
    """Refuse, from the header alone (before anything is decompressed), an image of more than
    ``max_voxels`` voxels x channels (``None``: :func:`default_max_voxels`)."""
    limit = default_max_voxels() if max_voxels is None else max_voxels
    voxels = int(np.prod([int(n) for n in shape], dtype=np.float64))
    if voxels > limit:
        raise InputError(
            f"{path} has {voxels:,} voxels (shape {tuple(shape)}), more than the limit of {limit:,} "
            f"(--max-voxels): resample it coarser or crop it, or raise --max-voxels if this machine "
            f"has the memory (about {BYTES_PER_VOXEL} bytes a voxel)"
        )


def affine_problem(affine: np.ndarray, dims: int) -> str | None:
    """Why the voxel-to-world affine of a ``dims``-D image cannot be used (not finite, singular over
    its ``dims`` voxel axes), or ``None``."""
    if not np.all(np.isfinite(affine)):
        return "not finite"
    block = _reduce_affine(np.asarray(affine, dtype=np.float64), dims)[:dims, :dims]
    singular = np.linalg.svd(block, compute_uv=False)
    if singular[0] == 0 or singular[-1] <= 1e-6 * singular[0]:
        return "singular (all zeros, or two axes along one direction)"
    return None


def spacing_affine(header: nib.Nifti1Header, shape: tuple[int, ...]) -> np.ndarray:
    """A 4x4 affine from the voxel spacing alone (header ``pixdim`` where it is finite and positive,
    else 1 mm), no rotation, the image centred on the world origin: what ``--ignore-header`` uses."""
    zooms = (list(header.get_zooms())[:3] + [1.0] * 3)[:3]
    spacing = np.array([float(z) if np.isfinite(z) and z > 0 else 1.0 for z in zooms])
    extent = np.array([int(n) - 1 for n in (list(shape)[:3] + [1] * 3)[:3]], dtype=np.float64)
    affine = np.diag([*spacing, 1.0])
    affine[:3, 3] = -spacing * extent / 2
    return affine


def spatial_dims(shape: tuple[int, ...]) -> int:
    """2 or 3: the spatial dimensions of a NIfTI shape (trailing axes of length 1 dropped; a 4th
    axis is channels)."""
    shape = tuple(shape)
    while len(shape) > 2 and shape[-1] == 1:
        shape = shape[:-1]
    return 2 if len(shape) <= 2 else 3


def _file_affine(image: nib.Nifti1Image, path: Path, ignore_header: bool) -> np.ndarray:
    if ignore_header:
        return spacing_affine(image.header, image.shape)
    problem = affine_problem(image.affine, spatial_dims(image.shape))
    if problem:
        raise InputError(
            f"{path} has a damaged header: its voxel-to-world affine is {problem}; pass "
            f"--ignore-header to use the voxel spacing only (images centred, no rotation), or "
            f"repair the header (e.g. nibabel's set_sform/set_qform)"
        )
    return np.asarray(image.affine, dtype=np.float64)


def dtype_problem(dtype: np.dtype) -> str | None:
    """Why voxels of ``dtype`` (a NIfTI header's) cannot be read as numbers, or ``None``: RGB
    colours (NIfTI's RGB24/RGBA32 are records of bytes) or complex values."""
    dtype = np.dtype(dtype)
    if dtype.names:
        return (
            f"stores colours ({dtype.names and '/'.join(dtype.names)} per voxel, NIfTI's RGB type): "
            f"lightning-reg reads one number per voxel; convert it to grayscale first"
        )
    if dtype.kind == "c":
        return "stores complex numbers: lightning-reg reads real values; save the magnitude instead"
    return None


def nifti_image(path: str | Path) -> nib.Nifti1Image:
    """``nib.load`` of a NIfTI file (its header read, not its data), typed as the NIfTI image it is
    (nibabel types it as any file-based image)."""
    return cast(nib.Nifti1Image, nib.load(str(path)))


def _open(path: Path) -> nib.Nifti1Image:
    """The NIfTI file at ``path``, its header read (not its data); InputError when it cannot be."""
    if not path.is_file():
        resolve_path(path)  # a loop of links is named as one
        raise InputError(f"file not found: {path}")
    try:
        image = nifti_image(path)
    except Exception as error:  # nibabel raises many types for unreadable files
        raise InputError(f"cannot read {path} as NIfTI: {error}") from None
    problem = dtype_problem(image.get_data_dtype())
    if problem:
        raise InputError(f"{path} {problem}")
    return image


def _label_tensor(array: np.ndarray, path: Path) -> torch.Tensor:
    if not np.all(np.isfinite(array)) or not np.allclose(array, np.round(array)):
        raise InputError(f"{path} is not a label map: its values are not all whole numbers")
    too_large = (array.dtype.kind == "u" and int(array.max()) > np.iinfo(np.int64).max) or (
        array.dtype.kind == "f" and (float(array.min()) < -(2.0**63) or float(array.max()) >= 2.0**63)
    )
    if too_large:
        raise InputError(f"{path} has label values beyond the 64-bit integer range: renumber its labels")
    return torch.from_numpy(np.round(array).astype(np.int64) if array.dtype.kind == "f" else array.astype(np.int64))


def stores_labels(path: str | Path) -> bool:
    """Whether a NIfTI file holds a label map, from its header: integers stored unscaled (no
    ``scl_slope``/``scl_inter`` other than 1 and 0) with one value per voxel (no 4th axis)."""
    image = _open(Path(path).expanduser())
    # nibabel moves the file's scl_slope/scl_inter from the header into the data proxy when it reads
    slope, intercept = getattr(image.dataobj, "slope", 1.0), getattr(image.dataobj, "inter", 0.0)
    unscaled = float(slope) == 1.0 and float(intercept) == 0.0
    one_value = len([n for n in image.shape[3:] if n != 1]) == 0
    return bool(np.issubdtype(image.get_data_dtype(), np.integer) and unscaled and one_value)


def _spatial_array(array: np.ndarray, path: Path, kind: str) -> np.ndarray:
    """``[C, *S]``: trailing axes of length 1 dropped, a 4th axis as channels; a spatial axis of
    length 1 elsewhere is refused (a slice stored across the grid would be read as a flat volume)."""
    while array.ndim > 2 and array.shape[-1] == 1:
        array = array[..., 0]
    if array.ndim == 2 or array.ndim == 3:
        array = array[None]
    elif array.ndim == 4 and kind != "label":
        array = np.moveaxis(array, -1, 0)
    else:
        raise InputError(f"{path} has shape {array.shape}; expected a 2D or 3D {kind}")
    if 1 in array.shape[1:]:
        raise InputError(
            f"{path} has shape {array.shape[1:]}: a 2D slice stored along another axis than the last; "
            f"lightning-reg reads a 2D image as (X, Y) or (X, Y, 1): move its axis of length 1 last "
            f"(with the affine's columns), e.g. nibabel's as_reoriented, or register it as 3D volumes"
        )
    return array


def load_volume(
    path: str | Path,
    kind: str = "image",
    *,
    max_voxels: int | None = None,
    ignore_header: bool = False,
    constant_ok: bool = False,
) -> Volume:
    """Read a 2D or 3D NIfTI file (a trailing axis of length 1 is dropped; a 4th axis is channels).

    ``kind`` is ``image`` (float32), ``label`` (int64, values must be whole numbers) or ``mask``
    (float32, :func:`mask_weights`). The size is checked against ``max_voxels`` (see
    :func:`check_size`) from the header, before reading the data; ``ignore_header`` replaces the
    affine by :func:`spacing_affine` (a damaged header); an image of one value is refused unless
    ``constant_ok`` (what ``apply`` moves may be constant; what is registered may not). ``~`` is
    the home folder, as nibabel reads it.
    """
    path = Path(path).expanduser()
    image = _open(path)
    check_size(path, image.shape, max_voxels)
    affine = _file_affine(image, path, ignore_header)
    try:
        array = np.asanyarray(image.dataobj)
    except Exception as error:  # truncated or corrupt data: gzip, zlib and nibabel raise many types
        raise InputError(f"cannot read {path} as NIfTI: {error}") from None
    if array.size == 0:
        raise InputError(f"{path} is empty (shape {array.shape})")
    array = _spatial_array(array, path, kind)
    dims = array.ndim - 1
    if kind == "label":
        tensor = _label_tensor(array, path)
    else:
        tensor = torch.from_numpy(np.asarray(array, dtype=np.float32))
        if not torch.isfinite(tensor).all():
            raise InputError(f"{path} contains NaN or infinite values")
        if kind == "mask":
            tensor = mask_weights(tensor, path)
        elif float(tensor.max() - tensor.min()) == 0.0 and not constant_ok:
            raise InputError(f"{path} is constant (every voxel is {float(tensor.max())}): nothing to register")
    return Volume(
        data=tensor.unsqueeze(0),
        affine=torch.from_numpy(_reduce_affine(affine, dims)).to(torch.float64),
        header=image.header,
        path=path,
        file_shape=tuple(image.shape),
        file_affine=affine,
    )


def mask_weights(mask: torch.Tensor, source: str | Path) -> torch.Tensor:
    """A cost-function mask as the solver's weights in [0, 1]: a binary or label-valued mask is 1
    where nonzero; a soft mask (fractions, e.g. a brain probability map) is used as it is, each voxel
    weighed by its value. Negative or fractional values above 1 are an :class:`InputError`."""
    mask = mask.float()
    if bool((mask < 0).any()):
        raise InputError(f"the mask {source} has negative values: a mask is 0 outside and positive inside")
    whole = bool(torch.equal(mask, mask.round()))
    if not whole and float(mask.max()) > 1:
        raise InputError(
            f"the mask {source} has fractions above 1 (largest {float(mask.max()):g}): a soft mask holds "
            f"weights between 0 and 1; divide it by its largest value"
        )
    weights = (mask != 0).float() if whole else mask
    if not bool((weights > 0).any()):
        raise InputError(f"the mask {source} is empty (no nonzero voxel): nothing would be compared")
    return weights


def onto_grid(volume: Volume, reference: Volume, what: str, ignore_header: bool = False) -> Volume:
    """``volume`` (a label map or mask) on the voxel grid of ``reference`` (its image), as its header
    places it: as it is when both headers agree; its voxels reordered when it is the same grid stored
    in another axis order or direction (a copy saved as LPS beside an RAS image); else an
    :class:`InputError`, never a label map read as if it lay where it does not. ``ignore_header``
    (the user's ``--ignore-header``): its voxels are the image's when the shapes agree."""
    dims = reference.dims
    if volume.dims != dims:
        raise InputError(f"{what} {volume.path} is {volume.dims}D but its image {reference.path} is {dims}D")
    if ignore_header and volume.shape == reference.shape:
        return Volume(volume.data, reference.affine, volume.header, volume.path, reference.file_shape)
    to_reference = np.linalg.inv(reference.affine.numpy()) @ volume.affine.numpy()  # its voxels -> the image's
    if volume.shape == reference.shape and np.allclose(to_reference, np.eye(dims + 1), atol=1e-3):
        return volume
    linear, offset = to_reference[:dims, :dims], to_reference[:dims, dims]
    signed = np.round(linear)
    axes = np.abs(signed).argmax(axis=1)  # the image's axis n is the volume's axis axes[n]
    signs = signed[np.arange(dims), axes]
    permutation = sorted(axes.tolist()) == list(range(dims)) and np.allclose(linear, signed, atol=1e-3)
    shape = tuple(volume.shape[axis] for axis in axes)
    expected = np.where(signs < 0, np.array(shape) - 1, 0)
    if permutation and shape == reference.shape and np.allclose(offset, expected, atol=1e-3):
        order = [0, 1, *(2 + int(axis) for axis in axes)]
        data = volume.data.permute(order).flip([2 + n for n in range(dims) if signs[n] < 0])
        return Volume(data.contiguous(), reference.affine, volume.header, volume.path, reference.file_shape)
    raise InputError(
        f"{what} {volume.path} does not lie on the voxel grid of {reference.path}: its header places it "
        f"elsewhere (shape {volume.shape} vs {reference.shape}, or another affine), so its voxels are not "
        f"the image's; resample it onto the image first (e.g. antsApplyTransforms -r IMAGE -i SEG "
        f"-n GenericLabel -t identity), fix its header, or, if only the headers are wrong and the voxels "
        f"match, pass --ignore-header"
    )


def _full_affine(affine: torch.Tensor) -> np.ndarray:
    """A 4x4 NIfTI affine from a 3x3 (2D) or 4x4 one."""
    matrix = affine.detach().cpu().double().numpy()
    if matrix.shape == (4, 4):
        return matrix
    full = np.eye(4)
    keep = [0, 1, 3]
    full[np.ix_(keep, keep)] = matrix
    return full


def _nifti(array: np.ndarray, reference: Volume, header: nib.Nifti1Header) -> nib.Nifti1Image:
    """A NIfTI image in the reference's space whose qform and sform both hold its affine (so every
    reader agrees)."""
    full = reference.file_affine if reference.file_affine is not None else _full_affine(reference.affine)
    image = nib.Nifti1Image(array, full, header)
    image.set_qform(full, code=1)
    image.set_sform(full, code=1)
    return image


def save_volume(
    data: torch.Tensor, reference: Volume, path: str | Path, kind: str = "image", overwrite: bool = True
) -> None:
    """Write ``[C, *S]`` or ``[*S]`` data with the reference's affine and header (its space); without
    ``overwrite``, a file that appeared at ``path`` meanwhile is kept (:func:`atomic_path`)."""
    array = data.detach().cpu().numpy()
    if array.ndim == reference.dims + 1:
        array = array[0] if array.shape[0] == 1 else np.moveaxis(array, 0, -1)
    if array.size == int(np.prod(reference.file_shape)):
        array = array.reshape(reference.file_shape)  # keep singleton axes as the user stored them
    dtype = _label_dtype(array) if kind == "label" else np.float32
    header = reference.header.copy()
    header.set_data_dtype(dtype)
    with atomic_path(path, overwrite) as temporary:
        nib.save(_nifti(array.astype(dtype), reference, header), str(temporary))


def _label_dtype(array: np.ndarray) -> type:
    """int32 where the labels fit (what every reader takes), else int64."""
    info = np.iinfo(np.int32)
    return np.int32 if array.size == 0 or (array.min() >= info.min and array.max() <= info.max) else np.int64


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
    with atomic_path(path) as temporary:
        if str(path).endswith(".gz"):
            # no time or name in the gzip header: the same result gives the same bytes
            with open(temporary, "wb") as raw, gzip.GzipFile("", "wb", DISPLACEMENT_GZIP_LEVEL, raw, mtime=0) as handle:
                handle.write(image.to_bytes())
        else:
            nib.save(image, str(temporary))
