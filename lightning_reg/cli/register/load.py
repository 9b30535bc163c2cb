"""Reading and checking every input file of a request, and its provenance (paths, SHA-256, versions)."""

from __future__ import annotations

import hashlib
import platform
import shlex
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import torch

from ...errors import InputError, warn
from ...files.landmarks import read_landmark_pair
from ...files.nifti import Volume, load_volume, onto_grid
from ...models import resolve_checkpoint
from ...solver import field_of_view_overlap
from ...solver.geometry.frames import field_of_view_centre
from .request import RegisterRequest

#: below this share of the fixed field of view inside the moving one, register warns
LOW_OVERLAP = 0.5


@dataclass
class Loaded:
    """The request's files, read and checked: images, label maps, cost-function masks ``[1, 1, *S]``
    (``None`` when absent), landmarks in mm, and the provenance of the inputs."""

    fixed: Volume
    moving: Volume
    fixed_seg: Volume | None
    moving_seg: Volume | None
    masks: dict[str, torch.Tensor | None]
    landmarks: tuple[torch.Tensor, torch.Tensor] | None
    provenance: dict


def load(request: RegisterRequest) -> Loaded:
    """Read and check every input file of ``request`` (landmarks too: a bad file costs no registration)."""
    read: dict[str, Any] = dict(max_voxels=request.max_voxels, ignore_header=request.ignore_header)
    fixed, moving = load_volume(request.fixed, **read), load_volume(request.moving, **read)
    if fixed.dims != moving.dims:
        raise InputError(f"fixed image is {fixed.dims}D but moving image is {moving.dims}D")
    if fixed.data.shape[1] != moving.data.shape[1]:
        raise InputError(f"fixed has {fixed.data.shape[1]} channels, moving {moving.data.shape[1]}")
    labels, ignore = dict(kind="label", **read), request.ignore_header
    fixed_seg = moving_seg = None
    if request.fixed_seg and request.moving_seg:
        fixed_seg = onto_grid(load_volume(request.fixed_seg, **labels), fixed, "--fixed-seg", ignore)
        moving_seg = onto_grid(load_volume(request.moving_seg, **labels), moving, "--moving-seg", ignore)
    check_overlap(fixed, moving)
    landmarks = None
    if request.fixed_landmarks is not None and request.moving_landmarks is not None:
        landmarks = read_landmark_pair(request.fixed_landmarks, request.moving_landmarks, fixed.dims)
    masks = _load_masks(request, fixed, moving)
    return Loaded(fixed, moving, fixed_seg, moving_seg, masks, landmarks, provenance(request))


def _load_masks(request: RegisterRequest, fixed: Volume, moving: Volume) -> dict[str, torch.Tensor | None]:
    """``{"fixed_mask": [1, 1, *S] or None, "moving_mask": ...}`` from ``--fixed-mask``/``--moving-mask``."""
    masks: dict[str, torch.Tensor | None] = {}
    read: dict[str, Any] = dict(kind="mask", max_voxels=request.max_voxels, ignore_header=request.ignore_header)
    for role, path, image in (("fixed", request.fixed_mask, fixed), ("moving", request.moving_mask, moving)):
        masks[f"{role}_mask"] = None
        if path is not None:
            mask = onto_grid(load_volume(path, **read), image, f"--{role}-mask", request.ignore_header)
            masks[f"{role}_mask"] = mask.data
    return masks


def check_overlap(fixed: Volume, moving: Volume) -> None:
    """No overlap in world space is an error (nothing to register); little overlap, a warning."""
    overlap = field_of_view_overlap(fixed.shape, fixed.affine, moving.shape, moving.affine)
    if overlap == 0:
        centres = [field_of_view_centre(volume.shape, volume.affine) for volume in (fixed, moving)]
        shown = [", ".join(f"{value:.0f}" for value in centre) for centre in centres]
        raise InputError(
            f"{fixed.path} and {moving.path} do not overlap in world space: their headers put their "
            f"centres at ({shown[0]}) and ({shown[1]}) mm. Pass --ignore-header to centre both, or "
            f"fix the headers"
        )
    if overlap < LOW_OVERLAP:
        warn(
            f"only {overlap:.0%} of {fixed.path}'s field of view lies inside {moving.path}'s (from "
            f"their headers); if they should overlap more, check the headers or pass --ignore-header"
        )


def sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(request: RegisterRequest) -> dict:
    """How a result was made, as far as it is known before the solve: the command line, the versions,
    the machine's threads, each input file (and the checkpoint) with its SHA-256."""
    inputs = {name: {"path": str(path), "sha256": sha256(path)} for name, path in request.input_files.items()}
    path = resolve_checkpoint(request.checkpoint) if request.checkpoint else None
    if path is not None and path.is_file():  # else loading it says what is wrong
        inputs["checkpoint"] = {"path": str(path), "given": str(request.checkpoint), "sha256": sha256(path)}
    return {
        "command": shlex.join(request.command_line),
        "versions": {name: version(name) for name in ("lightning_reg", "torch", "nibabel", "numpy")}
        | {"python": platform.python_version()},
        "machine": {"device": str(request.device), "threads": torch.get_num_threads(), "platform": platform.platform()},
        "inputs": inputs,
    }
