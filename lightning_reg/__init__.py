"""lightning_reg: learned deformable image registration with optimization as a layer.

The public face is imported on first use (PEP 562), so ``import lightning_reg`` stays light:
``RegistrationModule`` (Lightning), ``SolverSettings``, ``RegistrationLayer`` and ``register`` (torch only).
"""

from importlib import import_module
from importlib.metadata import version

from . import moved

__version__ = version(__name__)  # pyproject.toml holds it

_WHERE = {
    "RegistrationModule": "training.module",
    "SolverSettings": "training.solver_settings",
    "RegistrationLayer": "solver.layer",
    "register": "solver.register",
}
__all__ = ["__version__", *sorted(_WHERE)]

moved.install(__name__)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
