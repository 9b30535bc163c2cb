"""lightning_reg: learned deformable image registration with optimization as a layer.

The public face is imported on first use (PEP 562), so ``import lightning_reg`` stays light:
``RegistrationModule`` (Lightning), ``SolverSettings``, ``RegistrationLayer``, ``SolverOptions`` and
``register`` (torch only).
"""

from importlib import import_module
from importlib.metadata import version
from typing import TYPE_CHECKING

from . import moved

if TYPE_CHECKING:  # what the lazy table below hands out, for type checkers and IDEs
    from .solver.layer import RegistrationLayer as RegistrationLayer
    from .solver.options import SolverOptions as SolverOptions
    from .solver.register import register as register
    from .training.module import RegistrationModule as RegistrationModule
    from .training.solver_settings import SolverSettings as SolverSettings

__version__ = version(__name__)  # pyproject.toml holds it

_WHERE = {
    "RegistrationModule": "training.module",
    "SolverSettings": "training.solver_settings",
    "RegistrationLayer": "solver.layer",
    "SolverOptions": "solver.options",
    "register": "solver.register",
}
__all__ = ["__version__", *sorted(_WHERE)]

moved.install(__name__)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
