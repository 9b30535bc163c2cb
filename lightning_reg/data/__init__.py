"""Data: the synthetic generators and the LightningDataModules.

Names are imported on first use (PEP 562), so ``python -m lightning_reg.data.synthetic`` runs its
module without the package having imported it first.
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # what the lazy table below hands out, for type checkers and IDEs
    from .abcd_datamodule import ABCDDataModule as ABCDDataModule
    from .brains.datamodule import BrainDataModule as BrainDataModule
    from .file_datamodule import FileDataModule as FileDataModule
    from .oasis_datamodule import OASISDataModule as OASISDataModule
    from .pairs_datamodule import PairsDataModule as PairsDataModule
    from .shifts import SHIFTS as SHIFTS
    from .shifts import shift_transform as shift_transform
    from .synthetic_datamodule import SyntheticDataModule as SyntheticDataModule
    from .synthetic_datamodule import SynthPairs as SynthPairs
    from .synthmorph import SynthSettings as SynthSettings
    from .synthmorph import synth_pair as synth_pair

_WHERE = {
    "SyntheticDataModule": "synthetic_datamodule",
    "SynthPairs": "synthetic_datamodule",
    "SynthSettings": "synthmorph",
    "synth_pair": "synthmorph",
    "FileDataModule": "file_datamodule",
    "OASISDataModule": "oasis_datamodule",
    "ABCDDataModule": "abcd_datamodule",
    "PairsDataModule": "pairs_datamodule",
    "BrainDataModule": "brains.datamodule",
    "SHIFTS": "shifts",
    "shift_transform": "shifts",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
