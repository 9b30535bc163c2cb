"""Checkpoints: opened without running anyone's code, written whole or not at all, found by name.

A Lightning checkpoint stores the module's hyperparameters, and the network's ``class_path`` among
them; LightningCLI and ``load_from_checkpoint`` import whatever module that names. Here a
checkpoint may only name classes of ``lightning_reg`` and ``torch``, and of the packages the user
lists in ``$LIGHTNING_REG_TRUSTED_MODULES``.
"""

from __future__ import annotations

import io
import os
import warnings
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import IO, Any, Iterable

import torch
from lightning.fabric.utilities.cloud_io import _is_local_file_protocol
from lightning.pytorch.plugins.io import TorchCheckpointIO
from typing_extensions import Self

from ..errors import InputError, shorten
from ..files.output_folder import atomic_path
from ..moved import REMOVED_IN
from .solver_settings import OLD_SPELLING

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


def _refusal(error: Exception) -> str:
    """Why torch did not load a file, in one line of whole words: for a pickle that would run code,
    what it asked for (torch's own message is a paragraph about ``weights_only``)."""
    text = " ".join(str(error).split())
    if "WeightsUnpickler error:" in text:
        asked = text.split("WeightsUnpickler error:", 1)[1].split("Check the documentation", 1)[0].strip()
        return shorten(f"it holds objects other than tensors and numbers, refused unread: {asked}")
    return shorten(f"{type(error).__name__}: {text}")


def read_checkpoint(path: str | Path, data: bytes | None = None) -> dict:
    """The checkpoint's dictionary (from ``data``, the file's bytes, when given), loaded as data only
    (``weights_only``: no pickled code)."""
    path = Path(path)
    if data is None and not path.is_file():
        raise InputError(f"checkpoint not found: {path}")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols; the refusal says what matters
            warnings.simplefilter("ignore", UserWarning)
            checkpoint = torch.load(
                io.BytesIO(data) if data is not None else path, weights_only=True, map_location="cpu"
            )
    except Exception as error:  # torch raises many kinds for files that are not checkpoints or are cut short
        raise InputError(f"{path} is not a lightning-reg checkpoint, or is damaged ({_refusal(error)})") from None
    if not isinstance(checkpoint, dict) or "state_dict" not in checkpoint:
        raise InputError(f"{path} is not a Lightning checkpoint (no state_dict)")
    return checkpoint


def trusted_checkpoint(location: str | Path | IO, ignore: Iterable[str] = ()) -> io.BytesIO:
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


#: what ``InterruptCheckpoint`` saves on Ctrl-C beside ``last.ckpt`` (the state of that moment)
INTERRUPTED_FILE = "interrupted.ckpt"


class TrustedLoading:
    """Lightning's ``load_from_checkpoint`` for a LightningModule (mixed in before it), on a file first
    read as data only and naming network classes only of trusted packages (:func:`trusted_checkpoint`):
    opening a checkpoint imports no module it names."""

    @classmethod
    def pretrained(cls, name: str, map_location=None):
        """Deprecated since 0.3, removed in 0.5: ``lightning_reg.models.pretrained(name)``."""
        warnings.warn(
            "RegistrationModule.pretrained moved to lightning_reg.models.pretrained in 0.3; call that (this "
            f"method is removed in {REMOVED_IN['0.3']})",
            DeprecationWarning,
            stacklevel=2,
        )
        from ..models import pretrained  # the one import of models from training, until 0.5 (test_layout.py)

        return pretrained(name, map_location)

    @classmethod
    def load_from_checkpoint(
        cls,
        checkpoint_path: str | Path | IO,
        map_location: Any = None,
        hparams_file: str | Path | None = None,
        strict: bool | None = None,
        weights_only: bool | None = None,
        **kwargs: Any,
    ) -> Self:
        with warnings.catch_warnings():  # a checkpoint's 0.3 solver keys are no spelling the user can change
            warnings.filterwarnings("ignore", message=OLD_SPELLING, category=FutureWarning)
            return super().load_from_checkpoint(  # type: ignore[misc]
                trusted_checkpoint(checkpoint_path, ignore=kwargs),
                map_location=map_location,
                hparams_file=hparams_file,
                strict=strict,
                weights_only=weights_only,
                **kwargs,
            )


def plain_hyperparameters(hparams: dict) -> None:
    """Make a module's saved hyperparameters plain data, in place, so that ``torch.load(weights_only=True)``
    reads its checkpoints: no network module (outside LightningCLI its weights are in the state dict),
    dataclasses of solver settings as dicts."""
    if isinstance(hparams.get("network"), torch.nn.Module):
        del hparams["network"]
    for key, value in list(hparams.items()):
        if is_dataclass(value) and not isinstance(value, type):
            hparams[key] = asdict(value)


def check_same_network(module: Any, checkpoint: dict) -> None:
    """A clear error when ``checkpoint`` holds the weights of another network than ``module``'s (a
    ``RegistrationModule``): the parameters' names and shapes must agree."""
    mine = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    theirs = {k: tuple(v.shape) for k, v in checkpoint.get("state_dict", {}).items()}
    if mine != theirs:
        different = sorted(set(mine) ^ set(theirs)) or [k for k in mine if mine[k] != theirs.get(k)]
        network = module.network
        raise ValueError(
            f"the checkpoint was trained with another network than {type(network).__name__}"
            f"(dims={network.dims}, scales={network.scales}): parameters differ, e.g. "
            f"{different[:3]}. Use the training run's config (--config <run>/config.yaml) or "
            f"its network settings"
        )


def resume_checkpoint(roots: Iterable[str | Path]) -> Path | None:
    """What ``--ckpt_path last`` resumes: of the run under ``roots`` that wrote a checkpoint most
    recently (``last.ckpt`` at an epoch's end, or ``interrupted.ckpt`` on Ctrl-C), its ``last.ckpt``
    (an exact resume), or its ``interrupted.ckpt`` when no epoch of it was complete; never an older
    run's checkpoint in place of the newest run's."""
    names = ("last.ckpt", INTERRUPTED_FILE)
    found = [
        path
        for root in roots
        if Path(root).is_dir()
        for name in names
        for path in Path(root).glob(f"**/checkpoints/{name}")
    ]
    newest = max(found, key=lambda path: path.stat().st_mtime, default=None)
    if newest is None:
        return None
    last = newest.parent / "last.ckpt"
    return last if last.is_file() else newest


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
