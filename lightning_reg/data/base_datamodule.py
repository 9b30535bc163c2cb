"""What every data module of pairs shares: its batch size and workers, checked once, and the loader."""

from __future__ import annotations

from typing import Callable

import lightning as L
from torch.utils.data import DataLoader, Dataset, Sampler

from ..hyperparameters import AttributeHyperparameters


class PairDataModule(AttributeHyperparameters, L.LightningDataModule):
    """A LightningDataModule of registration pairs: ``batch_size`` pairs a batch (per process under
    DDP) and ``num_workers`` loader workers a process, kept alive between epochs; prediction reads the
    test pairs. Subclasses make the datasets and samplers."""

    def __init__(self, batch_size: int = 1, num_workers: int = 0) -> None:
        super().__init__()
        if batch_size < 1 or num_workers < 0:
            raise ValueError(f"batch_size must be >= 1 and num_workers >= 0, got {batch_size}, {num_workers}")
        self.batch_size, self.num_workers = batch_size, num_workers

    def pair_loader(self, dataset: Dataset, sampler: Sampler | None, collate: Callable | None = None) -> DataLoader:
        """The loader of ``dataset`` in the order ``sampler`` gives (``collate``: the batches' assembly)."""
        return DataLoader(
            dataset,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=collate,
            persistent_workers=self.num_workers > 0,
        )

    def predict_dataloader(self) -> DataLoader:
        return self.test_dataloader()
