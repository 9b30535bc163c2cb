"""lightning_reg: learned deformable image registration with optimization as a layer.

The public face is imported on first use (PEP 562), so ``import lightning_reg`` stays light:
``RegistrationModule`` (Lightning), ``RegistrationLayer``, ``SolverOptions`` and ``register`` (torch
only); ``SolverSettings`` is 0.3's name of ``SolverOptions`` (deprecated, removed in 0.6).
"""

import os
import sys


def _forget_working_folder() -> None:
    """``python -m lightning_reg...`` puts the working folder first on ``sys.path`` (Python 3.11+
    not under ``-P``/``PYTHONSAFEPATH``); drop it before anything else is imported here, so that a
    file such as ``argparse.py`` or ``typing.py`` lying in the folder where a user runs a command
    never runs. While Python locates the ``-m`` module, ``sys.argv[0]`` is ``"-m"``."""
    running = [arg for arg in getattr(sys, "orig_argv", []) if arg.removeprefix("-m").startswith("lightning_reg")]
    if sys.argv[:1] != ["-m"] or not running or not sys.path:
        return
    first = sys.path[0]
    if first == "" or os.path.realpath(first) == os.path.realpath(os.getcwd()):
        del sys.path[0]


_forget_working_folder()

from importlib import import_module  # noqa: E402 (after the working folder is off the path)
from importlib.metadata import version  # noqa: E402
from typing import TYPE_CHECKING  # noqa: E402

from . import moved  # noqa: E402

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
