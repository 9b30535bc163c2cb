"""The embedded default data: SynthMorph-style pairs, seeded, 2D or 3D, no download."""

from __future__ import annotations

from typing import Sequence

from torch.utils.data import DataLoader, Dataset

from .base_datamodule import PairDataModule
from .datasets import shifted_item
from .sampling import evaluation_sampler, training_sampler
from .shifts import shift_transform
from .synthmorph import SynthSettings, synth_pair

#: Seed offsets keep the training, validation and test pairs disjoint.
SPLIT_OFFSETS = {"train": 0, "val": 1_000_000, "test": 2_000_000}


class SynthPairs(Dataset):
    """``count`` pairs of one split; pair ``i`` is drawn from seed ``seed + offset(split) + i``."""

    def __init__(
        self, settings: SynthSettings, count: int, split: str, seed: int = 0, shift: str | None = None
    ) -> None:
        if count < 1:
            raise ValueError(f"the {split} split needs at least one pair, got {count}")
        self.settings = settings
        self.shift = shift_transform(shift, len(settings.shape))
        self.count = count
        self.split = split
        self.first_seed = seed + SPLIT_OFFSETS[split]

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.count:
            raise IndexError(index)
        seed = self.first_seed + index
        item = {**synth_pair(self.settings, seed), "id": f"{self.split}-{seed}"}
        return item if self.shift is None else shifted_item(item, self.shift, seed)


class SyntheticDataModule(PairDataModule):
    """SynthMorph-style random pairs (see ``synthmorph.py``): training pairs, and fixed validation
    and test pairs.

    Args:
        shape: spatial shape, 2 numbers for 2D or 3 for 3D.
        num_labels: labels of each random label map (:class:`SynthSettings`).
        label_smoothness: smoothness of the label maps, voxels (:class:`SynthSettings`).
        warp_magnitude: size of the random warps, voxels (:class:`SynthSettings`).
        warp_smoothness: smoothness of the random warps, voxels (:class:`SynthSettings`).
        blur: largest blur of a rendering (:class:`SynthSettings`).
        noise: largest noise of a rendering (:class:`SynthSettings`).
        bias: largest bias field of a rendering (:class:`SynthSettings`).
        same_contrast: share of pairs whose two images share one contrast (:class:`SynthSettings`).
        train_pairs: training pairs per epoch.
        val_pairs: validation pairs (fixed seeds).
        test_pairs: test pairs (fixed seeds).
        seed: shifts every split's seeds; with the epoch, the order of the training pairs.
        shift: domain shift of the test (and predict) pairs, e.g. ``anisotropy4``, ``intensity``,
            ``noise``, ``anisotropy4+intensity`` (see ``data/shifts.py``); None or ``clean``: none.
        batch_size: pairs per batch, per process under DDP (evaluation uses the same).
        num_workers: data loader workers per process (the processes of a DDP run share the pairs out).
    """

    def __init__(
        self,
        shape: Sequence[int] = (64, 64),
        num_labels: int = 4,
        label_smoothness: float = 8.0,
        warp_magnitude: float = 3.0,
        warp_smoothness: float = 10.0,
        blur: float = 1.0,
        noise: float = 0.05,
        bias: float = 0.2,
        same_contrast: bool = False,
        train_pairs: int = 160,
        val_pairs: int = 8,
        test_pairs: int = 16,
        seed: int = 0,
        shift: str | None = None,
        batch_size: int = 1,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        self.save_hyperparameters()
        self.settings = SynthSettings(
            shape, num_labels, label_smoothness, warp_magnitude, warp_smoothness, blur, noise, bias, same_contrast
        )
        shift_transform(shift, len(self.settings.shape))  # an unknown preset fails now

    def _loader(self, split: str, count: int) -> DataLoader:
        shift = self.hparams.shift if split == "test" else None
        pairs = SynthPairs(self.settings, count, split, self.hparams.seed, shift)
        sampler = (
            training_sampler(pairs, count, self.hparams.seed, self.trainer)
            if split == "train"
            else evaluation_sampler(pairs, self.trainer, split)
        )
        return self.pair_loader(pairs, sampler)

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", self.hparams.train_pairs)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", self.hparams.val_pairs)

    def test_dataloader(self) -> DataLoader:
        return self._loader("test", self.hparams.test_pairs)
