"""Data: the synthetic generators and the LightningDataModules."""
from .datamodule import SyntheticDataModule, SynthPairs
from .synthmorph import SynthSettings, synth_pair

__all__ = ["SynthPairs", "SynthSettings", "SyntheticDataModule", "synth_pair"]
