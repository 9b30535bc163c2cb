"""ANTs transform files: a registration written as ``antsRegistration`` writes it, and ANTs' own
files read back.

Under an output folder (ANTs names them so under its ``--output`` prefix):

- ``0GenericAffine.mat``: the linear part, ITK ``AffineTransform_double_D_D`` in MATLAB v4 format
  (12 or 6 parameters: the matrix row by row, then the translation; ``fixed``: the centre), world
  LPS millimetres, mapping fixed points to moving points;
- ``1Warp.nii.gz``: the dense part, a displacement field on the fixed grid (ITK convention:
  ``io.save_itk_displacement``), applied to a fixed point before the affine;
- ``1InverseWarp.nii.gz``: its inverse, on the same grid, applied after the inverse affine.

So ``antsApplyTransforms -r F -i M -t 1Warp.nii.gz -t 0GenericAffine.mat`` gives ``warped.nii.gz``
and ``-r M -i F -t [0GenericAffine.mat,1] -t 1InverseWarp.nii.gz`` maps the fixed image onto the
moving one. Written by hand: ITK's own writer (SimpleITK, ANTsPy) would make one of the peers a
dependency of ``register``; the format is one MATLAB v4 file of two double vectors (scipy writes it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
import torch

from ..errors import InputError
from ..solver import RegistrationResult
from ..solver.geometry.inverse import InverseField, dense_part
from ..solver.geometry.spatial import normalized_to_voxel
from .nifti import RAS_TO_LPS, Volume, save_itk_displacement
from .output_folder import atomic_path

AFFINE_FILE, WARP_FILE, INVERSE_WARP_FILE = "0GenericAffine.mat", "1Warp.nii.gz", "1InverseWarp.nii.gz"
#: the names under which ITK and ANTs store an affine (older ANTs: MatrixOffsetTransformBase)
AFFINE_KEYS = (
    "AffineTransform_double_{d}_{d}",
    "AffineTransform_float_{d}_{d}",
    "MatrixOffsetTransformBase_double_{d}_{d}",
    "MatrixOffsetTransformBase_float_{d}_{d}",
)


def _normalized_to_world(affine: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return affine.to(torch.float64) @ normalized_to_voxel(shape, affine.device)


def world_affine(result: RegistrationResult) -> torch.Tensor:
    """The linear part as a map of world points (RAS mm), fixed -> moving, ``[B, d+1, d+1]``."""
    frames = result.frames
    fixed = _normalized_to_world(frames.fixed_affine, result.fixed_shape)
    moving = _normalized_to_world(frames.moving_affine, result.moving_shape)
    return moving @ result.matrix.to(torch.float64) @ torch.linalg.inv(fixed)


def _field_mm(result: RegistrationResult, field: torch.Tensor) -> torch.Tensor:
    """A normalized-unit field ``[B, d, *S_fixed]`` in world millimetres (RAS components)."""
    linear = _normalized_to_world(result.frames.fixed_affine, result.fixed_shape)[:, : result.dims, : result.dims]
    return torch.einsum("bij,bj...->bi...", linear.to(field.dtype), field)


def warp_mm(result: RegistrationResult) -> torch.Tensor:
    """The dense part ``[B, d, *S_fixed]`` in world mm (RAS): fixed point ``p`` goes to ``p + w(p)``,
    then through :func:`world_affine`."""
    return _field_mm(result, dense_part(result.grid, result.matrix))


def inverse_warp_mm(result: RegistrationResult, inverse: InverseField) -> torch.Tensor:
    """The inverse of the dense part (``RegistrationResult.inverse_field``) in world mm (RAS)."""
    return _field_mm(result, inverse.displacement)


def _lps(dims: int) -> np.ndarray:
    return np.diag([*RAS_TO_LPS[:dims], 1.0])


def save_ants_affine(matrix_ras: torch.Tensor | np.ndarray, path: str | Path) -> None:
    """Write a world map ``[d+1, d+1]`` (RAS mm, fixed -> moving) as ANTs' ``0GenericAffine.mat``."""
    matrix = np.asarray(matrix_ras.detach().cpu() if torch.is_tensor(matrix_ras) else matrix_ras, dtype=np.float64)
    dims = matrix.shape[0] - 1
    flip = _lps(dims)
    lps = flip @ matrix @ flip
    parameters = np.concatenate([lps[:dims, :dims].ravel(), lps[:dims, dims]])[:, None]
    with atomic_path(path) as temporary:
        with open(temporary, "wb") as handle:
            scipy.io.savemat(
                handle, {f"AffineTransform_double_{dims}_{dims}": parameters, "fixed": np.zeros((dims, 1))}, format="4"
            )


#: an affine that scales any axis by less than this (or more than its inverse) is refused: no
#: registration shrinks or grows an image a thousandfold, and such a matrix is numerically singular
MIN_SCALE = 1e-3


def load_ants_affine(path: str | Path) -> torch.Tensor:
    """An ITK/ANTs affine ``.mat`` (MATLAB v4 or v5, as ANTs and ITK write them) as a world map
    ``[d+1, d+1]`` (RAS mm, float64), fixed -> moving. Only numbers are read, never code."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    try:
        contents = scipy.io.loadmat(str(path))
    except Exception as error:  # scipy raises many types for files that are not MATLAB
        raise InputError(f"cannot read {path} as an ITK/ANTs affine (.mat): {error}") from None
    for dims in (3, 2):
        for key in AFFINE_KEYS:
            name = key.format(d=dims)
            if name in contents:
                return _affine_from_parameters(
                    np.asarray(contents[name], np.float64).ravel(),
                    np.asarray(contents.get("fixed", np.zeros(dims)), np.float64).ravel(),
                    dims,
                    path,
                )
    found = ", ".join(key for key in contents if not key.startswith("__")) or "nothing"
    raise InputError(
        f"{path} holds no ITK affine transform (found {found}); expected AffineTransform_double_3_3 "
        f"or _2_2, as antsRegistration writes 0GenericAffine.mat"
    )


def _affine_from_parameters(parameters: np.ndarray, centre: np.ndarray, dims: int, path: Path) -> torch.Tensor:
    if parameters.size != dims * dims + dims or centre.size != dims or not np.all(np.isfinite(parameters)):
        raise InputError(
            f"{path} has a damaged affine: {parameters.size} parameters and a centre of {centre.size} "
            f"values (expected {dims * dims + dims} and {dims}, finite)"
        )
    linear = parameters[: dims * dims].reshape(dims, dims)
    scales = np.linalg.svd(linear, compute_uv=False)
    if scales[-1] < MIN_SCALE or scales[0] > 1 / MIN_SCALE:
        raise InputError(
            f"{path} is a singular or near-singular affine (it scales by {scales[-1]:.3g} to {scales[0]:.3g} "
            f"along its axes): it would squeeze the image onto a plane or a point, and it has no inverse; "
            f"it is not a registration's result"
        )
    # ITK: T(p) = A (p - c) + c + t
    lps = np.eye(dims + 1)
    lps[:dims, :dims] = linear
    lps[:dims, dims] = parameters[dims * dims :] + centre - linear @ centre
    flip = _lps(dims)
    return torch.from_numpy(flip @ lps @ flip)


def save_ants_transforms(
    result: RegistrationResult, inverse: InverseField | None, fixed: Volume, folder: str | Path
) -> list[str]:
    """Write pair 0 of ``result`` as ANTs' files (module docstring) into ``folder``; the warps only
    for a deformable result, the inverse warp only given ``inverse``. Returns the names written."""
    folder = Path(folder)
    save_ants_affine(world_affine(result)[0], folder / AFFINE_FILE)
    written = [AFFINE_FILE]
    if result.transform is None or result.transform.deformable:
        save_itk_displacement(warp_mm(result)[0], fixed, folder / WARP_FILE)
        written.append(WARP_FILE)
        if inverse is not None:
            save_itk_displacement(inverse_warp_mm(result, inverse)[0], fixed, folder / INVERSE_WARP_FILE)
            written.append(INVERSE_WARP_FILE)
    return written
