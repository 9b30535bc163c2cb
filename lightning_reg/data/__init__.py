"""Data: the synthetic generators and the LightningDataModules.

Names are imported on first use (PEP 562), so ``python -m lightning_reg.data.synthetic`` runs its
module without the package having imported it first.
"""

from importlib import import_module

_WHERE = {
    "SyntheticDataModule": "synthetic_datamodule",
    "SynthPairs": "synthetic_datamodule",
    "SynthSettings": "synthmorph",
    "synth_pair": "synthmorph",
    "FileDataModule": "file_datamodule",
    "OASISDataModule": "oasis",
    "ABCDDataModule": "abcd",
    "PairsDataModule": "manifest",
    "BrainDataModule": "brains.datamodule",
    "SHIFTS": "shifts",
    "shift_transform": "shifts",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
