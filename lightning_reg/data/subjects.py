"""Image records (an image file and its optional label map, cost-function mask and landmarks) and
their conversion to torchio subjects and back to the tensors of a batch."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

import numpy as np
import torch
import torchio as tio

from ..files.landmarks import read_landmarks
from ..files.nifti import affine_problem, check_size, drop_axis_affine, dtype_problem, mask_weights, nifti_image


@dataclass(frozen=True)
class ImageRecord:
    """One scan: ``name`` (subject id, used in pair ids), ``image`` path, optional ``seg`` (label
    map), ``mask`` (cost-function mask, nonzero inside; on the image's grid) and ``landmarks`` (CSV
    of world points, ``landmarks.py``, for the target registration error) paths."""

    name: str
    image: Path
    seg: Path | None = None
    mask: Path | None = None
    landmarks: Path | None = None


def _header_shape(path: Path, what: str, dims: int) -> tuple[int, ...]:
    """The shape in ``path``'s header, after checking its size and (for images) its affine."""
    if not path.is_file():
        raise ValueError(f"{what} not found: {path}")
    try:
        image = nifti_image(path)
    except Exception as error:  # nibabel raises many types for unreadable files
        raise ValueError(f"cannot read {what} {path} as NIfTI: {error}") from None
    check_size(path, image.shape, None)
    problem = dtype_problem(image.get_data_dtype())
    if problem:
        raise ValueError(f"{what} {path} {problem}")
    problem = affine_problem(image.affine, dims) if what == "image" else None
    if problem:
        raise ValueError(
            f"image {path} has a damaged header: its voxel-to-world affine is {problem}; repair it "
            f"(e.g. nibabel's set_sform/set_qform) or leave the image out"
        )
    return tuple(image.shape)


def _spatial(shape: tuple[int, ...]) -> tuple[int, ...]:
    shape = shape[:3]
    return shape + (1,) * (3 - len(shape))


def check_record(record: ImageRecord, dims: int) -> None:
    """Clear errors before training: files exist and read as NIfTI, image and labels have one
    shape, and the images have ``dims`` spatial dimensions."""
    shape = _spatial(_header_shape(record.image, "image", dims))
    if 0 in shape:
        raise ValueError(f"image {record.image} is empty (shape {shape})")
    singletons = shape.count(1)
    if dims == 3 and singletons:
        raise ValueError(
            f"image {record.image} is a 2D slice (shape {shape}) but the data module is 3D; set --data.dims 2"
        )
    if dims == 2 and singletons != 1:
        raise ValueError(f"image {record.image} has shape {shape}, not a 2D slice; set --data.dims 3 for volumes")
    for what, path in (("label map", record.seg), ("mask", record.mask)):
        other = None if path is None else _spatial(_header_shape(path, what, dims))
        if other is not None and other != shape:
            raise ValueError(
                f"{what} {path} has shape {other} but its image {record.image} has {shape}: they "
                f"must share one voxel grid"
            )
    if record.landmarks is not None:
        read_landmarks(record.landmarks, dims)


def read_nifti(path) -> tuple[torch.Tensor, np.ndarray]:
    """torchio reader: ``[C, X, Y, Z]`` data in the file's type and the affine, by nibabel.

    Used instead of torchio's default (SimpleITK), which silently turns NaN into 0; here NaN or
    infinite values are an error that names the file.
    """
    image = nifti_image(path)
    data = np.asanyarray(image.dataobj)
    if np.issubdtype(data.dtype, np.floating) and not np.isfinite(data).all():
        raise ValueError(f"{path} contains NaN or infinite values; fix or mask them before registration")
    data = data.reshape(data.shape + (1,) * (3 - data.ndim))
    data = data[None] if data.ndim == 3 else np.moveaxis(data.reshape(data.shape[:3] + (-1,)), -1, 0)
    if data.dtype == np.uint16 or data.dtype == np.uint32:
        data = data.astype(np.int64)
    return torch.from_numpy(np.ascontiguousarray(data)), image.affine


def load_subject(record: ImageRecord) -> tio.Subject:
    """A torchio subject with ``image`` and, when the record has them, ``seg`` and ``mask`` (label
    maps, so every spatial step resamples them with the image), read by :func:`read_nifti`."""
    images: dict[str, tio.Image] = {"image": tio.ScalarImage(record.image, reader=read_nifti)}
    for key in ("seg", "mask"):
        if getattr(record, key) is not None:
            images[key] = tio.LabelMap(getattr(record, key), reader=read_nifti)
    return tio.Subject(name=record.name, **images)


def tensor_subject(
    image: torch.Tensor, seg: torch.Tensor | None = None, affine: torch.Tensor | None = None, name: str = ""
) -> tio.Subject:
    """A torchio subject from ``[C, *S]`` tensors (2D gets a trailing axis of length 1) and an
    optional ``[d+1, d+1]`` affine (default: 1 mm voxels)."""
    dims = image.dim() - 1
    grid = np.eye(4)
    if affine is not None:
        keep = list(range(dims)) + [3]
        grid[np.ix_(keep, keep)] = affine.double().cpu().numpy()
    lift = (lambda t: t.unsqueeze(-1)) if dims == 2 else (lambda t: t)
    images: dict[str, tio.Image] = {"image": tio.ScalarImage(tensor=lift(image.float()), affine=grid)}
    if seg is not None:
        images["seg"] = tio.LabelMap(tensor=lift(seg.long()), affine=grid)
    return tio.Subject(name=name, **images)


def subject_tensors(subject: tio.Subject, dims: int, source: str) -> dict[str, torch.Tensor]:
    """``image`` ``[C, *S]`` float32, ``seg`` ``[1, *S]`` int64 and ``mask`` ``[1, *S]`` float32 (1
    inside; when present) and ``affine`` ``[d+1, d+1]`` float64 of a subject; 2D drops the grid's
    axis of length 1. ``source`` names the files in errors."""
    image, seg_image, mask_image = (cast(tio.Image, subject.get(key)) for key in ("image", "seg", "mask"))
    data, affine = image.data.float(), torch.from_numpy(np.asarray(image.affine, dtype=np.float64))
    for key in ("seg", "mask"):
        if key in subject and not np.allclose(cast(tio.Image, subject[key]).affine, image.affine, atol=1e-3):
            raise ValueError(
                f"the {'label map' if key == 'seg' else key} of {source} does not lie on its image's voxel "
                f"grid after preprocessing (their headers place them differently): resample it onto the "
                f"image, or keep --data.canonical true if it is the same grid stored in another orientation"
            )
    seg = seg_image.data.long() if "seg" in subject else None
    mask = mask_weights(mask_image.data, f"of {source}") if "mask" in subject else None
    if dims == 2:
        axis = [n for n in range(3) if data.shape[1 + n] == 1]
        if len(axis) != 1:
            raise ValueError(f"{source}: shape {tuple(data.shape[1:])} after preprocessing is not a 2D slice")
        data = data.squeeze(1 + axis[0])
        seg = seg.squeeze(1 + axis[0]) if seg is not None else None
        mask = mask.squeeze(1 + axis[0]) if mask is not None else None
        affine = drop_axis_affine(affine, axis[0])
    if not torch.isfinite(data).all():
        raise ValueError(f"{source} contains NaN or infinite values")
    if float(data.max() - data.min()) == 0.0:
        raise ValueError(f"{source} is constant after preprocessing (every voxel is {float(data.max())})")
    tensors = {"image": data, "affine": affine}
    for key, value in (("seg", seg), ("mask", mask)):
        if value is not None:
            tensors[key] = value
    return tensors
