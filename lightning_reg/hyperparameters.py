"""Lightning's saved hyperparameters, typed once for the whole package.

Lightning types ``hparams`` as a ``MutableMapping`` while it is an ``AttributeDict`` whose keys read as
attributes (``self.hparams.lr``); modules and data modules mix this in before Lightning's class so that
type checkers read those attributes as the untyped values they are.
"""

from __future__ import annotations

from typing import Any


class AttributeHyperparameters:
    """``hparams`` as Lightning's ``AttributeDict`` (keys as attributes, values untyped)."""

    @property
    def hparams(self) -> Any:
        return super().hparams  # type: ignore[misc]
