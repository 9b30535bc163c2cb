"""``lightning-reg register``: register two NIfTI files (or every pair of a CSV), classically on the
intensities or with a trained model (``--checkpoint``), optionally with a label prompt.

Its rooms, in the order a run goes through them: ``parser`` (the options), ``request`` (them as one
typed object, checked), ``load`` (the files, checked, and their provenance), ``solve``, ``measure``,
``report`` (``metrics.json`` from values), ``write`` (the files), ``batch`` (``--pairs``), ``model``
(a checkpoint's model, imported only with ``--checkpoint``: Lightning loads slowly); ``command`` runs them.
"""

from .command import run
from .parser import build_parser

__all__ = ["build_parser", "run"]
