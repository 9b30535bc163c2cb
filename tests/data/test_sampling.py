"""Which pairs each process reads: seeded training draws split over processes, evaluation pairs once."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from torch.utils.data import DistributedSampler

from lightning_reg.data import OASISDataModule, SyntheticDataModule
from lightning_reg.data.sampling import TrainingSampler, evaluation_sampler


def processes(world: int, rank: int) -> SimpleNamespace:
    """What the data modules read of a trainer: its number of processes and this one's rank."""
    return SimpleNamespace(world_size=world, global_rank=rank)


def epoch_draws(count: int, size: int, seed: int, epoch: int, world: int = 1) -> list[list[int]]:
    per_rank = []
    for rank in range(world):
        sampler = TrainingSampler(range(size), count, seed, world, rank)
        sampler.set_epoch(epoch)
        per_rank.append(list(sampler))
    return per_rank


def test_two_processes_share_out_one_epoch_of_draws_without_overlap():
    (alone,) = epoch_draws(8, 8, seed=0, epoch=0)
    first, second = epoch_draws(8, 8, seed=0, epoch=0, world=2)
    assert sorted(alone) == list(range(8))  # each pair once per epoch
    assert len(first) == len(second) == 4 and not set(first) & set(second)
    assert sorted(first + second) == sorted(alone)


def test_uneven_counts_give_every_process_as_many_steps():
    parts = epoch_draws(5, 10, seed=1, epoch=0, world=2)
    assert [len(part) for part in parts] == [3, 3]  # DDP needs the same number of steps everywhere
    (alone,) = epoch_draws(5, 10, seed=1, epoch=0)
    assert set(parts[0]) | set(parts[1]) == set(alone)


def test_draws_are_seeded_by_seed_and_epoch():
    assert epoch_draws(16, 16, seed=3, epoch=2) == epoch_draws(16, 16, seed=3, epoch=2)  # a resumed epoch repeats
    assert epoch_draws(16, 16, seed=3, epoch=2) != epoch_draws(16, 16, seed=3, epoch=3)
    assert epoch_draws(16, 16, seed=3, epoch=2) != epoch_draws(16, 16, seed=4, epoch=2)


def test_more_draws_than_pairs_use_each_pair_before_repeating_one():
    (draws,) = epoch_draws(7, 3, seed=0, epoch=0)
    assert sorted(draws[:3]) == sorted(draws[3:6]) == [0, 1, 2]


def test_evaluation_pairs_are_split_over_processes_each_once():
    assert evaluation_sampler(range(5), None, "test") is None
    parts = [list(evaluation_sampler(range(5), processes(2, rank), "test")) for rank in (0, 1)]
    assert parts == [[0, 2, 4], [1, 3]]
    with pytest.raises(ValueError, match="2 test pair.*3 processes"):
        evaluation_sampler(range(2), processes(3, 0), "test")


def test_the_synthetic_module_under_two_processes():
    data = SyntheticDataModule(shape=(16, 16), train_pairs=6, val_pairs=3, test_pairs=3)
    ids = []
    for rank in (0, 1):
        data.trainer = processes(2, rank)
        loader = data.train_dataloader()
        assert isinstance(loader.sampler, DistributedSampler)  # so Lightning keeps it
        ids.append([batch["id"][0] for batch in loader])
        assert [batch["id"][0] for batch in data.test_dataloader()] == [
            f"test-{2_000_000 + i}" for i in range(rank, 3, 2)
        ]
    assert len(ids[0]) == len(ids[1]) == 3 and not set(ids[0]) & set(ids[1])


def test_file_training_draws_keep_their_count_under_two_processes(neurite_tree):
    data = OASISDataModule(neurite_tree, dims=2, val_subjects=2, test_subjects=2, train_pairs=5)
    data.setup("fit")
    ids = []
    for rank in (0, 1):
        data.trainer = processes(2, rank)
        loader = data.train_dataloader()
        assert isinstance(loader.sampler, DistributedSampler)
        ids.append([pair for batch in loader for pair in batch["id"]])
    # 5 of the 6 pairs of 3 training subjects, shared out 3 + 3 (the last process repeats one);
    # Lightning's own sampler would have read all 6 pairs
    assert [len(part) for part in ids] == [3, 3] and len(set(ids[0]) | set(ids[1])) == 5


def test_processes_augment_differently_and_reproducibly(neurite_tree):
    data = OASISDataModule(neurite_tree, dims=2, val_subjects=2, test_subjects=2, augmentation="spatial")
    data.setup("fit")

    def first_moving_image(rank):
        torch.manual_seed(0)  # Lightning seeds every process alike
        data.trainer = processes(2, rank)
        return data.train_dataloader().dataset[0]["moving"]

    assert torch.equal(first_moving_image(0), first_moving_image(0))
    assert not torch.allclose(first_moving_image(0), first_moving_image(1))
