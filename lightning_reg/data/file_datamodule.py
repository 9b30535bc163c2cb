"""The shared base of the data modules that read NIfTI files: torchio preprocessing, training
augmentation, test-time domain shift, seeded random training pairs and fixed evaluation pairs."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import torch
import torchio as tio
from torch.utils.data import DataLoader

from ..errors import InputError
from ..solver.checks import check_number
from .augmentation import augmentation as augmentation_steps
from .base_datamodule import PairDataModule
from .datasets import FixedPairs, Pair, Pipeline, ReadablePairs, SubjectPairs, collate_pairs
from .preprocessing import normalization as normalization_steps
from .preprocessing import read_label_lookup, size_for_2d, spatial_preprocessing
from .sampling import evaluation_sampler, process_layout, training_sampler
from .shifts import shift_transform
from .subjects import ImageRecord, check_record


@dataclass
class Splits:
    """Training subjects (random pairs are drawn from them) or fixed training pairs; fixed
    validation and test pairs."""

    train_subjects: list[ImageRecord] = field(default_factory=list)
    train_pairs: list[Pair] = field(default_factory=list)
    val: list[Pair] = field(default_factory=list)
    test: list[Pair] = field(default_factory=list)


def consecutive_pairs(subjects: list[ImageRecord]) -> list[Pair]:
    """Subject ``i`` as fixed with subject ``i + 1`` as moving (Learn2Reg's validation pairing)."""
    return list(zip(subjects[:-1], subjects[1:]))


def held_out_splits(subjects: list[list[ImageRecord]], val_subjects: int, test_subjects: int, found: str) -> Splits:
    """The last ``val_subjects + test_subjects`` subjects held out (each given as its records, in a
    fixed order): validation then test pairs of consecutive held-out subjects (their first record),
    training on every record of the others. ``found`` says what was searched, for the error."""
    held_out = val_subjects + test_subjects
    if len(subjects) < held_out + 2:
        raise ValueError(
            f"{len(subjects)} {found}: too few for {val_subjects} validation + {test_subjects} test "
            f"+ 2 training subjects; lower --data.val_subjects/--data.test_subjects"
        )
    first_test = len(subjects) - test_subjects
    train = subjects[: len(subjects) - held_out]
    return Splits(
        train_subjects=[record for records in train for record in records],
        val=consecutive_pairs([records[0] for records in subjects[len(subjects) - held_out : first_test]]),
        test=consecutive_pairs([records[0] for records in subjects[first_test:]]),
    )


class FileDataModule(PairDataModule):
    """Base of the NIfTI data modules; subclasses say where the files are (:meth:`find_splits`).

    Args:
        dims: 3 for volumes, 2 for slices stored as ``X x Y x 1`` NIfTI files.
        canonical: reorient to RAS+ (``tio.ToCanonical``).
        spacing: resample to this spacing in mm (one number or one per axis); None keeps the files'.
        size: pad/crop (centred) to this many voxels per axis; None keeps each image's size (the
            solver does not need one size; batches of more than one pair do).
        normalization: ``minmax`` (percentiles 0.5-99.5 to [0, 1]), ``zscore`` or ``none``.
        label_lookup: ``aseg`` (FreeSurfer aseg codes to 1..35), a ``{code: label}`` dict, or a
            JSON / two-column CSV/TSV file; codes not in it become background.
        augmentation: training preset ``none``, ``spatial``, ``intensity`` or ``full``.
        shift: domain shift of the test (and predict) pairs, e.g. ``anisotropy4``, ``intensity``,
            ``noise``, ``anisotropy4+intensity`` (see ``data/shifts.py``); None or ``clean``: none.
        train_pairs: random training pairs per epoch (seeded by ``seed`` and the epoch; the processes
            of a DDP run share them out).
        max_val_pairs: at most this many of the fixed validation pairs (None: all).
        max_test_pairs: at most this many of the fixed test pairs (None: all).
        max_unreadable_fraction: a training pair whose files cannot be read (damaged or changed after
            the module checked them) is replaced by the next one, with a warning naming the file;
            training stops when more than this fraction of the pairs drawn (at least one epoch's
            worth) could not be read. Validation and test pairs must all read.
        seed: seeds the training pairs' draw (with the epoch).
        batch_size: pairs per batch, per process under DDP.
        num_workers: data loader workers per process.
    """

    def __init__(
        self,
        dims: int = 3,
        canonical: bool = True,
        spacing: float | Sequence[float] | None = None,
        size: Sequence[int] | None = None,
        normalization: str = "minmax",
        label_lookup: str | Mapping[int, int] | None = None,
        augmentation: str = "none",
        shift: str | None = None,
        train_pairs: int = 256,
        max_val_pairs: int | None = None,
        max_test_pairs: int | None = None,
        max_unreadable_fraction: float = 0.1,
        seed: int = 0,
        batch_size: int = 1,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims}")
        if train_pairs < 1:
            raise ValueError(f"train_pairs must be >= 1, got {train_pairs}")
        self.dims, self.shift_name = dims, shift
        self.max_unreadable_fraction = check_number("max_unreadable_fraction", max_unreadable_fraction, 0)
        self.pairs_drawn, self.unreadable = 0, 0
        self.warned: set[str] = set()
        self.seed = seed
        # not val_pairs/test_pairs: LightningCLI carries options of the same name over from the
        # default SyntheticDataModule, where they mean how many pairs to draw
        self.train_count, self.val_count, self.test_count = train_pairs, max_val_pairs, max_test_pairs
        spatial = spatial_preprocessing(canonical, spacing, size_for_2d(size, dims), read_label_lookup(label_lookup))
        normalize = normalization_steps(normalization)
        self.preprocess = tio.Compose(spatial + normalize)
        self.renormalize = tio.Compose(normalize) if normalize else None
        steps = augmentation_steps(augmentation, dims)
        self.augment = tio.Compose(steps) if steps else None
        self.shift = shift_transform(shift, dims)
        self.splits: Splits | None = None

    def find_splits(self) -> Splits:
        """The records of every split (subclasses read their layout here)."""
        raise NotImplementedError

    def scan(self) -> Splits:
        """Find the splits now (once): subclasses call it at the end of ``__init__`` so that a wrong
        folder is reported before a trainer or a logger starts."""
        if self.splits is None:
            self.splits = self.find_splits()
        return self.splits

    # ----------------------------------------------------------------------------------- set-up
    def setup(self, stage: str | None = None) -> None:
        splits = self.scan()
        needed = {
            "fit": (splits.train_subjects, splits.train_pairs, splits.val),
            "validate": (splits.val,),
            "test": (splits.test,),
            "predict": (splits.test,),
        }.get(stage or "fit", ())
        records = {
            record for group in needed for item in group for record in (item if isinstance(item, tuple) else (item,))
        }
        if stage in (None, "fit") and not (splits.train_subjects or splits.train_pairs):
            raise ValueError(f"{type(self).__name__}: no training data found")
        for record in sorted(records, key=lambda r: str(r.image)):
            check_record(record, self.dims)

    def _pipeline(self, augment: bool = False, shift: bool = False) -> Pipeline:
        return Pipeline(
            self.dims,
            self.preprocess,
            self.augment if augment else None,
            self.shift if shift else None,
            self.renormalize,
        )

    @staticmethod
    def _first(pairs: list[Pair], count: int | None, split: str) -> list[Pair]:
        if not pairs:
            raise ValueError(f"no {split} pairs found")
        return pairs if count is None else pairs[:count]

    def train_dataloader(self) -> DataLoader:
        splits = self.scan()
        dataset: SubjectPairs | FixedPairs
        if splits.train_subjects:
            dataset = SubjectPairs(splits.train_subjects, self._pipeline(augment=True))
            count = min(self.train_count, len(dataset))
        else:
            dataset = FixedPairs(splits.train_pairs, self._pipeline(augment=True))
            count = len(dataset)
        world, rank = process_layout(self.trainer)
        if self.augment is not None and world > 1:
            # torchio draws from torch's global generator, which Lightning seeds alike on every
            # process: offset it so that the processes augment differently (process 0 unchanged)
            torch.manual_seed(torch.initial_seed() + rank)
        return self.pair_loader(
            ReadablePairs(dataset), training_sampler(dataset, count, self.seed, self.trainer), collate_pairs
        )

    def on_before_batch_transfer(self, batch: dict, dataloader_idx: int) -> dict:
        """Count and report the training pairs skipped because their files could not be read (only
        training batches carry ``unreadable``)."""
        if "unreadable" not in batch:
            return batch
        messages = [line for text in batch.pop("unreadable") for line in text.splitlines() if line]
        self.pairs_drawn += len(batch["fixed"]) + len(messages)
        self.unreadable += len(messages)
        if messages and self.trainer is not None and self.trainer.logger is not None:
            self.trainer.logger.log_metrics(
                {"train/unreadable_pairs": float(self.unreadable)}, step=self.trainer.global_step
            )
        for message in messages:
            if message not in self.warned:
                self.warned.add(message)
                warnings.warn(f"skipped a training pair: {message}", stacklevel=2)
        if messages and self.unreadable > self.max_unreadable_fraction * max(self.pairs_drawn, self.train_count):
            raise InputError(
                f"{self.unreadable} of {self.pairs_drawn} training pairs could not be read (more than "
                f"--data.max_unreadable_fraction {self.max_unreadable_fraction:g}); the last: "
                f"{messages[-1]}. Fix or remove the damaged files"
            )
        return batch

    def val_dataloader(self) -> DataLoader:
        dataset = FixedPairs(self._first(self.scan().val, self.val_count, "validation"), self._pipeline())
        return self.pair_loader(dataset, evaluation_sampler(dataset, self.trainer, "validation"), collate_pairs)

    def test_dataloader(self) -> DataLoader:
        pairs = self._first(self.scan().test, self.test_count, "test")
        dataset = FixedPairs(pairs, self._pipeline(shift=True), seed=self.seed)
        return self.pair_loader(dataset, evaluation_sampler(dataset, self.trainer, "test"), collate_pairs)
