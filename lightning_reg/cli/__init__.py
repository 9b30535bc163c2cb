"""The command line: one file per command, ``main.py`` dispatches (the ``lightning-reg`` script)."""

from .main import main

__all__ = ["main"]
