"""``python -m lightning_reg.cli``: the ``lightning-reg`` command (the package's ``__init__`` has
already taken the working folder off ``sys.path``, before importing anything that could be shadowed)."""

import sys

from .main import main

if __name__ == "__main__":
    sys.exit(main())
