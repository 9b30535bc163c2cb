"""``python -m lightning_reg.cli``: the ``lightning-reg`` command."""

import os
import sys

from .main import main


def _forget_working_folder() -> None:
    """``python -m`` puts the working folder first on ``sys.path``; the ``lightning-reg`` script does
    not. Drop it, so that a class path (say, one a checkpoint names) never imports a ``.py`` file
    lying in the working folder."""
    here = os.path.realpath(os.getcwd())
    sys.path[:] = [entry for entry in sys.path if entry and os.path.realpath(entry) != here]


if __name__ == "__main__":
    _forget_working_folder()
    sys.exit(main())
