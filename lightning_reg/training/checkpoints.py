"""Checkpoints: opened without running anyone's code, written whole or not at all, found by name.

A Lightning checkpoint stores the module's hyperparameters, and the network's ``class_path`` among
them; LightningCLI and ``load_from_checkpoint`` import whatever module that names. Here a
checkpoint may only name classes of ``lightning_reg`` and ``torch``, and of the packages the user
lists in ``$LIGHTNING_REG_TRUSTED_MODULES``.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any, Iterable

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.plugins.io import TorchCheckpointIO

from ..errors import InputError
from ..files.output_folder import atomic_path

#: names more top-level packages (comma-separated) whose classes a checkpoint may name
TRUSTED_MODULES_VARIABLE = "LIGHTNING_REG_TRUSTED_MODULES"
BUILT_IN_TRUSTED = ("lightning_reg", "torch")
CLASS_KEYS = ("class_path", "_class_path")


def trusted_packages() -> tuple[str, ...]:
    """``lightning_reg``, ``torch`` and the packages of :data:`TRUSTED_MODULES_VARIABLE`."""
    extra = [name.strip() for name in os.environ.get(TRUSTED_MODULES_VARIABLE, "").split(",") if name.strip()]
    return (*BUILT_IN_TRUSTED, *extra)


def class_paths(tree: Any) -> list[str]:
    """Every ``class_path`` (and ``_class_path``) value in a nested structure of dicts and lists."""
    found = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            if key in CLASS_KEYS:
                found.append(str(value))
            found += class_paths(value)
    elif isinstance(tree, (list, tuple)):
        for value in tree:
            found += class_paths(value)
    return found


def check_trusted(hyperparameters: dict, source: str | Path, ignore: Iterable[str] = ()) -> None:
    """Refuse hyperparameters that name a class outside :func:`trusted_packages`; ``ignore``: the
    top-level keys the caller replaces (their class is the user's choice, not the checkpoint's)."""
    trusted = trusted_packages()
    kept = {key: value for key, value in hyperparameters.items() if key not in set(ignore)}
    for path in class_paths(kept):
        if path.split(".")[0] not in trusted:
            raise InputError(
                f"{source} names the class {path!r}, outside {', '.join(trusted)}; a checkpoint may only "
                f"name those, so that opening it runs no other code. If you trust it, set "
                f"{TRUSTED_MODULES_VARIABLE}={path.split('.')[0]}, or give the network yourself "
                f"(--model.network {path}, or --config <run>/config.yaml)"
            )


def read_checkpoint(path: str | Path, data: bytes | None = None) -> dict:
    """The checkpoint's dictionary (from ``data``, the file's bytes, when given), loaded as data only
    (``weights_only``: no pickled code)."""
    path = Path(path)
    if data is None and not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        checkpoint = torch.load(io.BytesIO(data) if data is not None else path, weights_only=True, map_location="cpu")
    except Exception as error:  # torch raises many kinds for files that are not checkpoints or are cut short
        reason = str(error).strip().splitlines()[0][:120] if str(error).strip() else ""
        raise InputError(
            f"{path} is not a lightning-reg checkpoint, or is damaged ({type(error).__name__}: {reason})"
        ) from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise InputError(f"{path} is not a Lightning checkpoint (no state_dict)")
    return checkpoint


def trusted_checkpoint(location: str | Path | io.BufferedIOBase, ignore: Iterable[str] = ()) -> io.BytesIO:
    """The bytes of a checkpoint (a path, or an open file as Lightning allows) once they are known to
    be a checkpoint read as data and to name network classes only of trusted packages
    (:func:`check_trusted`; ``ignore``: hyperparameters the caller replaces)."""
    if hasattr(location, "read"):
        data, source = location.read(), str(getattr(location, "name", "the checkpoint"))
    elif Path(location).is_file():
        data, source = Path(location).read_bytes(), str(location)
    else:
        raise InputError(f"checkpoint not found: {location}")
    checkpoint = read_checkpoint(source, data)
    check_trusted(checkpoint.get("hyper_parameters", {}), source, ignore=ignore)
    return io.BytesIO(data)


def newest_last_checkpoint(roots: Iterable[str | Path]) -> Path | None:
    """The most recently written ``checkpoints/last.ckpt`` of any run under ``roots``."""
    found = [path for root in roots if Path(root).is_dir() for path in Path(root).glob("**/checkpoints/last.ckpt")]
    return max(found, key=lambda path: path.stat().st_mtime, default=None)


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, but a local checkpoint is written under a temporary name in its
    own folder and renamed when complete (Lightning's own goes through a temporary file elsewhere,
    copied over when that is another file system), and weights that are not finite are never saved."""

    def save_checkpoint(self, checkpoint: dict[str, Any], path, storage_options: Any | None = None) -> None:
        bad = [
            key
            for key, value in checkpoint.get("state_dict", {}).items()
            if torch.is_tensor(value) and value.is_floating_point() and not bool(torch.isfinite(value).all())
        ]
        if bad:
            raise InputError(
                f"refusing to save {path}: weights {bad[:3]} are not finite (training diverged; lower --model.lr)"
            )
        if storage_options is not None or not _is_local_file_protocol(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_path(path) as temporary:
            torch.save(checkpoint, temporary)
