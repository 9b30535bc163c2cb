"""Which pairs each process reads: seeded random training pairs, different on every process of a
DDP run, and every evaluation pair exactly once over all processes."""

from __future__ import annotations

import math
from collections.abc import Sized
from typing import Any, cast

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DistributedSampler


def process_layout(trainer: L.Trainer | None) -> tuple[int, int]:
    """``(world size, global rank)`` of the trainer's processes; ``(1, 0)`` without a trainer."""
    if trainer is None:
        return 1, 0
    return trainer.world_size, trainer.global_rank


class TrainingSampler(DistributedSampler):
    """``count`` training pairs per epoch, drawn at random from the dataset (each pair once before
    any repeats), seeded by ``seed`` and the epoch, so a resumed run draws what it would have drawn.

    Over ``num_replicas`` processes, process ``rank`` takes every ``num_replicas``-th draw, and the
    first draws are repeated where needed so that every process runs the same number of steps (DDP
    needs it). A ``DistributedSampler`` so that Lightning keeps it: it replaces other samplers by
    its own, which would read the whole dataset each epoch and ignore ``count``.
    """

    def __init__(self, dataset: Any, count: int, seed: int = 0, num_replicas: int = 1, rank: int = 0) -> None:
        if count < 1:
            raise ValueError(f"train_pairs must be >= 1, got {count}")
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed)
        self.count = count
        self.num_samples = math.ceil(count / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def draws(self) -> list[int]:
        """This epoch's ``count`` dataset indices, on every process the same."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        size = len(cast(Sized, self.dataset))
        rounds = [torch.randperm(size, generator=generator) for _ in range(math.ceil(self.count / size))]
        return torch.cat(rounds)[: self.count].tolist()

    def __iter__(self):
        draws = self.draws()
        padded = (draws * math.ceil(self.total_size / len(draws)))[: self.total_size]
        return iter(padded[self.rank : self.total_size : self.num_replicas])


def training_sampler(dataset: Sized, count: int, seed: int, trainer: L.Trainer | None) -> TrainingSampler:
    """A :class:`TrainingSampler` for this process of the trainer."""
    world, rank = process_layout(trainer)
    return TrainingSampler(dataset, count, seed, world, rank)


def evaluation_sampler(dataset: Sized, trainer: L.Trainer | None, split: str) -> UnrepeatedDistributedSampler | None:
    """Under DDP, pairs ``rank, rank + world, ...`` for this process, none repeated (Lightning's
    default repeats pairs to give every process as many, which would count them twice in the
    metrics and the CSV); ``None`` (in order) on one process."""
    world, rank = process_layout(trainer)
    if world == 1:
        return None
    if len(dataset) < world:
        raise ValueError(
            f"{len(dataset)} {split} pair(s) for {world} processes: each process needs at least one. "
            f"Evaluate on fewer devices (--trainer.devices) or on more pairs"
        )
    return UnrepeatedDistributedSampler(dataset, num_replicas=world, rank=rank, shuffle=False)
