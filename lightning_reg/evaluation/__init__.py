"""How good a registration is: metrics (``metrics``), per-pair rows and their means (``rows``) and
pictures of a registered pair (``pictures``).

Until 0.3 this was one module (today's ``rows``); its names still import from here, with a warning.
"""

import warnings
from importlib import import_module

from ..moved import REMOVED_IN


def __getattr__(name: str):
    rows = import_module(".rows", __name__)
    if name.startswith("_") or not hasattr(rows, name):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn(
        f"{__name__}.{name} moved to {__name__}.rows.{name} in 0.3; import it from there "
        f"(the old path is removed in {REMOVED_IN['0.3']})",
        DeprecationWarning,
        stacklevel=2,
    )
    return getattr(rows, name)
