"""Registering two images with a trained model (``lightning-reg register --checkpoint``): load the
model, apply the user's test-time solver options, solve on its features."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import torch

from ...errors import InputError, warn
from ...files.nifti import Volume
from ...models import resolve_checkpoint
from ...solver import normalize_intensities
from ...solver.geometry.spatial import voxel_spacing
from ...training.module import RegistrationModule


def load_model(path: Path, device: torch.device) -> RegistrationModule:
    """The module of a ``lightning-reg fit`` checkpoint (or of a bundled model's name), in evaluation
    mode on ``device``; the last one loaded is kept while its file is unchanged (``--pairs``: once)."""
    resolved = resolve_checkpoint(path)
    stat = resolved.stat() if resolved.is_file() else None
    key = (resolved, stat and (stat.st_mtime_ns, stat.st_size), str(device))
    if _LOADED.get("key") != key:
        _LOADED.clear()
        _LOADED.update(key=key, model=_read_model(path, resolved, device))
    return _LOADED["model"]


#: the last model :func:`load_model` read, with its key
_LOADED: dict = {}


def _read_model(path: Path, resolved: Path, device: torch.device) -> RegistrationModule:
    try:
        model = RegistrationModule.load_from_checkpoint(str(resolved), map_location=device)
    except InputError:
        raise
    except Exception as error:  # torch and Lightning raise many kinds for files that are not checkpoints
        reason = " ".join(str(error).split())[:300]
        raise InputError(
            f"{path} is not a lightning-reg checkpoint of this version ({type(error).__name__}: {reason})"
        ) from None
    return model.eval().to(device)


#: voxels longer than this many times their shortest side count as thick slices
THICK_SLICES = 1.5


def warn_thick_slices(volumes: list[Volume]) -> None:
    """A warning for images with thick slices: features learned on isotropic voxels do not carry over
    (``benchmarks/real_brains.py --shift thick``: the 0.3 ``brain2d`` fell below no registration, the
    current one, trained with them, stays below the classical solver)."""
    for volume in volumes:
        spacing = voxel_spacing(volume.affine.double())
        if float(spacing.max() / spacing.min()) > THICK_SLICES:
            warn(
                f"{volume.path} has voxels of {' x '.join(f'{s:.2g}' for s in spacing.tolist())} mm; "
                f"unless the model was trained with thick slices (--data.anisotropy), resample it to isotropic "
                f"voxels first, or register it without --checkpoint"
            )


def check_model_input(model: RegistrationModule, fixed: Volume) -> None:
    """Dimensionality and channels the network expects; a warning when the image is not RAS."""
    network = model.network
    if fixed.dims != network.dims:
        raise InputError(f"the model registers {network.dims}D images but {fixed.path} is {fixed.dims}D")
    if fixed.data.shape[1] != network.in_channels:
        raise InputError(f"the model takes {network.in_channels} channel(s) but {fixed.path} has {fixed.data.shape[1]}")
    if fixed.dims == 3 and nib.aff2axcodes(fixed.affine.numpy()) != ("R", "A", "S"):
        warn(
            f"{fixed.path} is not RAS-oriented ({''.join(nib.aff2axcodes(fixed.affine.numpy()))}); "
            f"the data modules train on RAS images (nibabel.as_closest_canonical), so reorient first for "
            f"the features the model learned"
        )


def model_batch(
    fixed: Volume,
    moving: Volume,
    fixed_seg: Volume | None,
    moving_seg: Volume | None,
    device: torch.device,
    masks: dict | None = None,
) -> dict:
    """One pair as the model takes it: intensities mapped to [0, 1] as in training, affines, label
    maps, and ``masks`` (optional ``fixed_mask``/``moving_mask`` ``[1, 1, *S]``, cost-function masks)."""
    batch = {
        "fixed": normalize_intensities(fixed.data.to(device)),
        "moving": normalize_intensities(moving.data.to(device)),
        "fixed_affine": fixed.affine[None].float().to(device),
        "moving_affine": moving.affine[None].float().to(device),
    }
    if fixed_seg is not None and moving_seg is not None:
        batch.update(fixed_seg=fixed_seg.data.to(device), moving_seg=moving_seg.data.to(device))
    batch.update({name: mask.to(device) for name, mask in (masks or {}).items() if mask is not None})
    return batch
