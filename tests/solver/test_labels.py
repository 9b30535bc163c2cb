"""Linear label warping by a vote of the 2^d neighbours against its definition: the one-hot maps
warped with grid_sample (border padding) and the most likely label, ties to the smaller index."""

import pytest
import torch

from lightning_reg.solver.geometry.labels import label_index, label_values, one_hot, vote_labels
from lightning_reg.solver.geometry.spatial import identity_grid, sample


def _definition(labels: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    values = label_values(labels)
    return sample(one_hot(labels, values), grid, padding_mode="border").argmax(1, keepdim=True)


@pytest.mark.parametrize("shape", [(9, 11), (7, 8, 6)], ids=["2d", "3d"])
def test_the_vote_equals_the_one_hot_argmax_inside_outside_and_on_ties(shape):
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 5, (2, 1, *shape), generator=generator) * 7  # values 0, 7, ..., 28
    grid = identity_grid(shape).expand(2, *shape, len(shape)) * 1.3  # a third of the points outside
    grid = grid + 0.2 * torch.randn(grid.shape, generator=generator)
    grid[0, 0, 0] = float("nan")
    values = label_values(labels)
    assert torch.equal(vote_labels(label_index(labels, values), grid), _definition(labels, grid))
    # on voxel centres and half-way between two voxels (exact ties): the smaller label wins both ways
    half = identity_grid(shape).expand(2, *shape, len(shape)).clone()
    half[..., 0] += 1.0 / (shape[-1] - 1)
    for points in (identity_grid(shape).expand(2, *shape, len(shape)), half):
        assert torch.equal(vote_labels(label_index(labels, values), points), _definition(labels, points))
