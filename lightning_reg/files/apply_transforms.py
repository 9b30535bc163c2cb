"""Saved transforms applied to any image on any reference grid, as ``antsApplyTransforms`` does:
ours (``lightning-reg register``'s folder) or ANTs' own (``antsRegistration``'s output prefix).

The stack is ANTs' (``transform_files.py``): forward, a reference point ``p`` goes to
``A(p + w(p))`` in the input image (``-t 1Warp -t 0GenericAffine``); inverse, to
``q + v(q)``, ``q = A^-1 p`` (``-t [0GenericAffine,1] -t 1InverseWarp``). A folder with only our
composed ``warp.nii.gz`` is applied forward as that one field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..errors import InputError, warn
from ..solver import RegistrationResult, make_frames
from ..solver.geometry.spatial import apply_matrix, identity_grid, normalized_to_voxel, sample, voxel_to_normalized
from .ants import AFFINE_FILE, INVERSE_WARP_FILE, WARP_FILE, load_ants_affine
from .nifti import RAS_TO_LPS, Volume, drop_axis_affine, nifti_image

#: our single composed field, written beside ANTs' files
COMPOSED_FILE = "warp.nii.gz"
#: below this share of the reference grid mapped inside the input, apply warns
LOW_COVERAGE = 0.5
INTERPOLATIONS = ("linear", "nearest", "label")


@dataclass
class Field:
    """A displacement field read from an ITK/ANTs file: ``data`` ``[1, d, *S]`` (world mm, RAS
    components) and its voxel-to-world ``affine`` ``[d+1, d+1]``."""

    data: torch.Tensor
    affine: torch.Tensor
    path: Path


@dataclass
class Transforms:
    """What a transforms folder (or ANTs prefix) holds: the affine (world RAS, fixed -> moving,
    ``[d+1, d+1]``) and the fields, each ``None`` where absent."""

    affine: torch.Tensor | None
    warp: Field | None
    inverse_warp: Field | None
    composed: Field | None
    source: str

    @property
    def dims(self) -> int:
        for part in (self.affine, self.warp, self.composed):
            if part is not None:
                return part.shape[-1] - 1 if isinstance(part, torch.Tensor) else part.data.shape[1]
        raise InputError(f"{self.source} holds no transform")


def load_itk_displacement(path: str | Path) -> Field:
    """A displacement field in the ITK convention (5D NIfTI ``(X, Y, Z, 1, d)``, LPS components,
    mm), as ANTs and ``lightning-reg register`` write it."""
    path = Path(path)
    try:
        image = nifti_image(path)
        array = np.asarray(image.dataobj, dtype=np.float64)
    except Exception as error:  # nibabel, gzip and zlib raise many types for damaged files
        raise InputError(f"cannot read {path} as a displacement field: {error}") from None
    if array.ndim != 5 or array.shape[3] != 1 or array.shape[4] not in (2, 3):
        raise InputError(
            f"{path} has shape {array.shape}: not a displacement field (expected (X, Y, Z, 1, 3) or "
            f"(X, Y, 1, 1, 2), as ANTs writes them)"
        )
    dims = array.shape[4]
    field = array[..., 0, :] if dims == 3 else array[:, :, 0, 0, :]
    if not np.all(np.isfinite(field)):
        raise InputError(f"{path} holds NaN or infinite displacements")
    flips = np.array(RAS_TO_LPS[:dims])
    data = torch.from_numpy(np.moveaxis(field * flips, -1, 0).copy()).float()[None]
    affine = np.asarray(image.affine, dtype=np.float64)
    affine = affine if dims == 3 else drop_axis_affine(affine, 2)
    return Field(data, torch.from_numpy(affine), path)


def _named(base: Path, name: str) -> Path:
    return base / name if base.is_dir() else base.with_name(base.name + name)


def load_transforms(location: str | Path) -> Transforms:
    """The transforms of a folder (ours, or ANTs' files in it) or of an ANTs output prefix
    (``out/reg_`` for ``out/reg_0GenericAffine.mat`` ...)."""
    base = Path(location)
    paths = {name: _named(base, name) for name in (AFFINE_FILE, WARP_FILE, INVERSE_WARP_FILE, COMPOSED_FILE)}
    present = {name: path for name, path in paths.items() if path.is_file()}
    if not present:
        raise InputError(
            f"no transforms at {base}: expected {AFFINE_FILE} (and {WARP_FILE}, {INVERSE_WARP_FILE}) "
            f"or {COMPOSED_FILE} in a folder lightning-reg register wrote, or an ANTs output prefix"
        )
    read = {name: load_itk_displacement(path) for name, path in present.items() if name != AFFINE_FILE}
    affine = load_ants_affine(present[AFFINE_FILE]) if AFFINE_FILE in present else None
    return Transforms(affine, read.get(WARP_FILE), read.get(INVERSE_WARP_FILE), read.get(COMPOSED_FILE), str(base))


def _world_points(volume: Volume) -> torch.Tensor:
    """World coordinates (RAS mm) of the volume's voxels, ``[1, *S, d]``."""
    to_world = volume.affine.to(torch.float64) @ normalized_to_voxel(volume.shape)
    return apply_matrix(to_world[None].float(), identity_grid(volume.shape))


def _displaced(points: torch.Tensor, field: Field) -> torch.Tensor:
    """``points`` moved by ``field`` sampled there (zero outside the field, as ITK)."""
    to_grid = voxel_to_normalized(field.data.shape[2:]) @ torch.linalg.inv(field.affine)
    where = apply_matrix(to_grid[None].float(), points)
    return points + sample(field.data, where, padding_mode="zeros").movedim(1, -1)


def _affine_points(points: torch.Tensor, matrix: torch.Tensor) -> torch.Tensor:
    return apply_matrix(matrix[None].float(), points)


def mapped_points(transforms: Transforms, reference: Volume, inverse: bool = False) -> torch.Tensor:
    """Where each reference voxel samples the input image: world RAS mm ``[1, *S, d]``."""
    if transforms.dims != reference.dims:
        raise InputError(
            f"the transforms at {transforms.source} are {transforms.dims}D but the reference "
            f"{reference.path} is {reference.dims}D"
        )
    points = _world_points(reference)
    if inverse:
        if transforms.affine is None and transforms.composed is not None:
            raise InputError(
                f"{transforms.source} holds only the composed {COMPOSED_FILE}, which has no inverse; "
                f"apply the inverse with {AFFINE_FILE} and {INVERSE_WARP_FILE} (lightning-reg register "
                f"writes them)"
            )
        if transforms.warp is not None and transforms.inverse_warp is None:
            raise InputError(f"{transforms.source} has {WARP_FILE} but no {INVERSE_WARP_FILE}: the inverse needs it")
        if transforms.affine is not None:
            points = _affine_points(points, torch.linalg.inv(transforms.affine))
        return points if transforms.inverse_warp is None else _displaced(points, transforms.inverse_warp)
    if transforms.affine is None:
        if transforms.composed is None:
            raise InputError(f"{transforms.source} holds no transform ({AFFINE_FILE} or {COMPOSED_FILE})")
        return _displaced(points, transforms.composed)
    if transforms.warp is not None:
        points = _displaced(points, transforms.warp)
    return _affine_points(points, transforms.affine)


def check_coverage(image: Volume, points: torch.Tensor, source: str) -> None:
    """Refuse a mapping that sends no reference voxel into ``image`` (the result would be all
    zeros); warn when less than :data:`LOW_COVERAGE` of them land inside."""
    to_voxels = torch.linalg.inv(image.affine.to(torch.float64))
    voxels = apply_matrix(to_voxels[None].float(), points)
    upper = torch.tensor(image.shape, dtype=voxels.dtype) - 0.5
    share = float(((voxels >= -0.5) & (voxels <= upper)).all(-1).float().mean())
    if share == 0:
        raise InputError(
            f"the transforms at {source} map no voxel of the reference into {image.path} (the result would "
            f"be all zeros): check that --reference, --input and --transforms belong together, and --inverse"
        )
    if share < LOW_COVERAGE:
        warn(f"only {share:.0%} of the reference grid maps inside {image.path}; the rest of the result is zero")


def resample(image: Volume, reference: Volume, points: torch.Tensor, interpolation: str = "linear") -> torch.Tensor:
    """``image`` sampled at world ``points`` ``[1, *S, d]`` (:func:`mapped_points`), ``[1, C, *S]``:
    ``linear``, ``nearest``, or ``label`` (one-hot linear, the most likely label: ANTs' GenericLabel);
    zero outside the image."""
    if interpolation not in INTERPOLATIONS:
        raise InputError(f"unknown interpolation {interpolation!r}; choose one of {', '.join(INTERPOLATIONS)}")
    to_grid = voxel_to_normalized(image.shape) @ torch.linalg.inv(image.affine.to(torch.float64))
    grid = apply_matrix(to_grid[None].float(), points)
    frames = make_frames(reference.shape, image.shape, 1, reference.affine[None], image.affine[None])
    mapping = RegistrationResult(
        grid=grid,
        matrix=torch.eye(reference.dims + 1, dtype=torch.float64)[None],
        frames=frames,
        moving_shape=image.shape,
        transform=None,
    )
    if interpolation == "label":
        return mapping.warp_labels(image.data, mode="linear")
    if interpolation == "nearest" and not image.data.is_floating_point():
        return mapping.warp_labels(image.data, mode="nearest")
    return mapping.warp(image.data, mode="bilinear" if interpolation == "linear" else "nearest")
