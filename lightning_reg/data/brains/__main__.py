"""``python -m lightning_reg.data.brains``: the builder's old command (``python -m lightning_reg.anatomy``
since 0.3)."""

import sys
import warnings

from ...moved import REMOVED_IN

if __name__ == "__main__":
    warnings.warn(
        f"python -m lightning_reg.data.brains moved to python -m lightning_reg.anatomy in 0.3 (the old "
        f"command is removed in {REMOVED_IN['0.3']})",
        DeprecationWarning,
        stacklevel=1,
    )
    from ...anatomy.__main__ import main  # the one import of the builder from data/, until 0.5

    sys.exit(main())
