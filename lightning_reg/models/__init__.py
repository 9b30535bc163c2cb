"""Trained models shipped inside the package, usable by name (``--checkpoint brain3d``,
``lightning_reg.models.pretrained("brain2d")``); their cards are the ``.md`` files beside them.
Models depend on training (the module they load into), never the reverse (``tests/test_layout.py``)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ..errors import InputError

#: name -> what it registers (the card beside the checkpoint says how it was trained and measured)
BUNDLED = {
    "brain2d": "axial 2D brain slices, 2 mm pixels (96x112), any MRI contrast",
    "brain3d": "3D brains, 2 mm voxels (about 96x112x96), any MRI contrast",
}


def bundled_path(name: str) -> Path:
    """The checkpoint file of the bundled model ``name``."""
    if name not in BUNDLED:
        raise InputError(
            f"no bundled model {name!r}; the bundled models are {', '.join(BUNDLED)}, or give the path of a .ckpt file"
        )
    path = Path(str(resources.files(__name__) / f"{name}.ckpt"))
    if not path.is_file():
        raise InputError(
            f"the bundled model {name} is missing from this installation ({path}); reinstall lightning_reg"
        )
    return path


def resolve_checkpoint(value: str | Path) -> Path:
    """A checkpoint given as a file path or as a bundled model's name (a file of that name wins)."""
    path = Path(value)
    if path.is_file():
        return path
    if str(value) in BUNDLED:
        return bundled_path(str(value))
    if not path.suffix and path.parent == Path("."):  # a bare word: meant as a name
        raise InputError(f"{value} is neither a checkpoint file nor a bundled model ({', '.join(BUNDLED)})")
    return path


def pretrained(name: str, map_location=None):
    """The bundled model ``name`` (:data:`BUNDLED`: ``brain2d``, ``brain3d``) as a
    ``RegistrationModule`` in evaluation mode; its card is ``lightning_reg/models/<name>.md``."""
    from ..training.module import RegistrationModule  # Lightning loads slowly: only when a model is asked for

    return RegistrationModule.load_from_checkpoint(bundled_path(name), map_location=map_location).eval()
