"""The real-brain DataModule: the held-out rule, rendered training pairs, the affine jitter, the
held-out test pairs, in 2D and 3D."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lightning_reg.data.brains.anisotropy import thicken
from lightning_reg.data.brains.cohort import HELD_OUT, TEMPLATES
from lightning_reg.data.brains.datamodule import BrainDataModule, HeldOutPairs, random_affine_grid
from lightning_reg.data.brains.grid import TISSUE
from lightning_reg.errors import InputError
from lightning_reg.solver.geometry.spatial import identity_grid


@pytest.mark.parametrize("subject", [*HELD_OUT, *TEMPLATES])
def test_held_out_subjects_never_enter_training_or_validation(subject, built):
    folder, _, _ = built
    with pytest.raises(InputError, match="held-out"):
        BrainDataModule(folder, train_subjects=["9861", subject])
    with pytest.raises(InputError, match="held-out"):
        BrainDataModule(folder, val_subjects=[subject])


def _dice(a: torch.Tensor, b: torch.Tensor) -> float:
    labels = [v for v in torch.unique(torch.cat([a.flatten(), b.flatten()])).tolist() if v]
    return float(np.mean([2 * ((a == v) & (b == v)).sum() / ((a == v).sum() + (b == v).sum()) for v in labels]))


@pytest.mark.parametrize("dims", [2, 3])
def test_training_pairs_are_warped_renderings_of_training_donors(dims, built):
    folder, _, _ = built
    data = BrainDataModule(folder, dims=dims, train_pairs=4, shapes=0.0)
    data.setup("fit")
    pairs = data.train_dataloader().dataset
    item = pairs[0]
    shape = (96, 112) if dims == 2 else (96, 112, 96)
    assert item["fixed"].shape == (1, *shape) and item["fixed_seg"].shape == (1, *shape)
    assert item["fixed_affine"].shape == (dims + 1, dims + 1) and float(item["fixed_affine"][0, 0]) == 2.0
    assert 0 <= float(item["fixed"].min()) and float(item["fixed"].max()) <= 1
    first, second = item["id"].split("-")[2:]
    assert {first, second} <= {"9861", "10021", "12876"}
    # the fixed image is a warp of its donor's labels: the same labels, about the same volume, moved
    donor = torch.where(data.maps[first] == TISSUE, 0, data.maps[first])[0]
    assert set(item["fixed_seg"].unique().tolist()) <= set(donor.unique().tolist())
    if dims == 3:
        assert 0.7 < float((item["fixed_seg"] > 0).sum() / (donor > 0).sum()) < 1.3
        assert _dice(item["fixed_seg"], donor) < 0.95
    assert int(item["fixed_seg"].max()) <= 82  # the rendering-only tissue label is never scored
    again = pairs[0]
    assert torch.equal(again["fixed"], item["fixed"])  # seeded
    assert not torch.equal(pairs[1]["fixed"], item["fixed"])


def test_affine_jitter_is_rigid_in_voxels_on_a_non_cubic_grid():
    shape = (20, 30, 40)
    grid = identity_grid(shape)
    generator = torch.Generator().manual_seed(0)
    moved = random_affine_grid(grid, generator, rotation=30.0, scaling=0.0, shift=2.0)
    half = torch.tensor([(n - 1) / 2 for n in shape][::-1])
    points, images = grid.reshape(-1, 3) * half, moved.reshape(-1, 3) * half  # voxel units
    pick = torch.randperm(points.shape[0], generator=generator)[:200]
    before = torch.cdist(points[pick], points[pick])
    after = torch.cdist(images[pick], images[pick])
    assert torch.allclose(before, after, atol=0.02)  # voxels: distances kept, a rotation, not a shear
    assert (images - points).abs().max() > 2.0  # and it did move
    still = random_affine_grid(grid, generator, rotation=0.0, scaling=0.0, shift=0.0)
    assert torch.allclose(still, grid, atol=1e-6)


@pytest.mark.parametrize("dims", [2, 3])
def test_the_test_split_is_the_held_out_pairs(dims, built):
    folder, _, _ = built
    data = BrainDataModule(folder, dims=dims)
    pairs = data.test_dataloader().dataset
    ids = [pairs[index]["id"] for index in range(len(pairs))]
    assert len(ids) == 6 and {part for name in ids for part in name.split("-")} == set(HELD_OUT)
    item = pairs[0]
    assert item["fixed"].dim() == dims + 1 and item["fixed_seg"].dtype == torch.int64


@pytest.mark.parametrize("recipe", ["real", "t1like"])
def test_tissue_pairs_are_the_real_t1_subjects_on_grey_and_white_matter(recipe, built):
    pairs = HeldOutPairs(built[0], 2, recipe, test="tissue")
    assert len(pairs) == 6
    item = pairs[0]
    assert item["id"] == "fsaverage-icbm152" and set(item["fixed_seg"].unique().tolist()) <= {0, 1, 2}
    assert item["fixed"].shape == item["fixed_seg"].shape and item["fixed"].dtype == torch.float32
    with pytest.raises(InputError, match="recipes real, t1like"):
        HeldOutPairs(built[0], 2, "t2like", test="tissue")


@pytest.mark.parametrize("dims", [2, 3])
def test_mni_pairs_are_the_held_out_pairs_in_mni_space(dims, built):
    pairs, native = HeldOutPairs(built[0], dims, "t2like", test="mni"), HeldOutPairs(built[0], dims, "t2like")
    assert [pairs[index]["id"] for index in range(6)] == [native[index]["id"] for index in range(6)]
    item, other = pairs[0], native[0]
    assert item["fixed"].shape == other["fixed"].shape and not torch.equal(item["fixed_seg"], other["fixed_seg"])
    with pytest.raises(InputError, match="choose one of dk, tissue, mni"):
        HeldOutPairs(built[0], dims, test="native")


def test_a_folder_that_was_not_built_says_how_to_build_it(tmp_path):
    data = BrainDataModule(tmp_path)
    with pytest.raises(InputError, match="python -m lightning_reg.anatomy"):
        data.setup("fit")


def test_a_training_crop_is_one_window_of_both_images_with_its_own_affine(built):
    folder, _, _ = built
    data = BrainDataModule(
        folder,
        dims=3,
        train_pairs=2,
        shapes=0.0,
        crop=[32, 40, 24],
        rotation=0.0,
        scaling=0.0,
        shift=0.0,
        warp_magnitude=0.0,
    )
    data.setup("fit")
    item = data.train_dataloader().dataset[0]
    assert item["fixed"].shape == item["moving"].shape == (1, 32, 40, 24)
    # without warps the window's labels are the donor's labels at the window's world position
    donor = data.maps[item["id"].split("-")[2]][0, 0]
    affine = item["fixed_affine"].double()
    start = torch.linalg.solve(data.train_dataloader().dataset.affine.double(), affine[:, -1])[:3].round().long()
    window = donor[start[0] : start[0] + 32, start[1] : start[1] + 40, start[2] : start[2] + 24]
    assert torch.equal(item["fixed_seg"][0], torch.where(window == TISSUE, 0, window))
    with pytest.raises(ValueError, match="larger than the grid"):
        BrainDataModule(folder, crop=[200, 40, 24])
    with pytest.raises(ValueError, match="needs 2 sizes"):
        BrainDataModule(folder, dims=2, crop=[64, 64, 64])


def test_thick_slices_average_their_slices_and_the_header_puts_them_where_they_were():
    image = torch.arange(2 * 4 * 9, dtype=torch.float32).reshape(1, 2, 4, 9)
    labels = torch.arange(2 * 4 * 9).reshape(1, 2, 4, 9)
    affine = torch.tensor([[2.0, 0, 0, -10], [0, 2.0, 0, 5], [0, 0, 2.0, 7], [0, 0, 0, 1]])
    thick, middle, thick_affine = thicken(image, labels, affine, axis=2, factor=3)
    assert thick.shape == (1, 2, 4, 3) and middle.shape == (1, 2, 4, 3)
    assert torch.allclose(thick[0, 1, 2], image[0, 1, 2].reshape(3, 3).mean(1))
    assert torch.equal(middle[0, 1, 2], labels[0, 1, 2, 1::3])
    assert thick_affine[2, 2] == 6.0
    for slab in range(3):  # a slab's centre is the mean world position of its three slices
        centre = thick_affine @ torch.tensor([0.0, 0.0, slab, 1.0])
        slices = torch.stack([affine @ torch.tensor([0.0, 0.0, 3.0 * slab + k, 1.0]) for k in range(3)])
        assert torch.allclose(centre, slices.mean(0))


@pytest.mark.parametrize("factor", [1.5, 2.5, 3.5])
def test_fractional_slabs_average_what_they_cover_and_the_header_puts_them_there(factor):
    """A slab's value is the mean of the thin slices over the length it covers (checked against 1000
    samples per thin slice), and the thick header maps it to the world position of its centre."""
    image = torch.rand(1, 3, 11, dtype=torch.float64)
    labels = torch.arange(11).expand(1, 3, 11).clone()
    affine = torch.tensor([[2.0, 0, 4], [0, 2.0, -6], [0, 0, 1]], dtype=torch.float64)
    thick, middle, thick_affine = thicken(image, labels, affine, axis=1, factor=factor)
    slabs = int(11 // factor)
    assert thick.shape == (1, 3, slabs) and middle.shape == (1, 3, slabs)
    fine = image.repeat_interleave(1000, dim=2)  # sample j lies at thin-voxel coordinate (j + 0.5) / 1000
    positions = (torch.arange(fine.shape[2], dtype=torch.float64) + 0.5) / 1000
    for slab in range(slabs):
        inside = (positions >= slab * factor) & (positions < (slab + 1) * factor)
        assert torch.allclose(thick[0, :, slab], fine[0][:, inside].mean(1), atol=1e-3)
    centres = (torch.arange(slabs, dtype=torch.float64) + 0.5) * factor - 0.5  # thin-voxel coordinates
    index = torch.stack([torch.zeros(slabs), torch.arange(slabs), torch.ones(slabs)]).double()
    thin = torch.stack([torch.zeros(slabs), centres, torch.ones(slabs)])
    assert torch.allclose(thick_affine @ index, affine @ thin)
    assert torch.equal(middle[0, 0], centres.add(0.5).floor().long())  # the thin slice holding the centre
    assert float(thick_affine[1, 1]) == pytest.approx(2.0 * factor)


def test_anisotropy_gives_moving_images_thick_slices_on_their_own_grid(built):
    folder, _, _ = built
    data = BrainDataModule(folder, dims=2, train_pairs=6, anisotropy=1.0)
    data.setup("fit")
    pairs = data.train_dataloader().dataset
    for index in range(3):
        item = pairs[index]
        assert item["fixed"].shape == (1, 96, 112) and item["moving"].shape != item["fixed"].shape
        thick_axis = [a for a in range(2) if item["moving"].shape[a + 1] < item["fixed"].shape[a + 1]]
        assert len(thick_axis) == 1 and item["moving_seg"].shape == item["moving"].shape
        assert 3.0 <= float(item["moving_affine"][thick_axis[0], thick_axis[0]]) <= 7.0  # mm
    with pytest.raises(ValueError, match="between 0 and 1"):
        BrainDataModule(folder, anisotropy=1.5)


def _label_means_agree(item: dict) -> float:
    """Correlation, over the labels both images show well, of each label's median intensity."""
    shared = [
        v
        for v in item["fixed_seg"].unique().tolist()
        if v and (item["fixed_seg"] == v).sum() > 4 and (item["moving_seg"] == v).sum() > 4
    ]
    medians = torch.tensor(
        [[item[role][item[f"{role}_seg"] == v].median() for v in shared] for role in ("fixed", "moving")]
    )
    return float(torch.corrcoef(medians)[0, 1])


def test_same_contrast_pairs_share_one_random_intensity_per_label(built):
    folder, _, _ = built
    agreement = {}
    for share in (0.0, 1.0):
        data = BrainDataModule(folder, dims=2, train_pairs=4, val_pairs=4, shapes=0.0, same_contrast=share)
        data.setup("fit")
        for split, pairs in (("train", data.train_dataloader().dataset), ("val", data.val_dataloader().dataset)):
            found = [_label_means_agree(pairs[index]) for index in range(4)]
            agreement[share, split] = [value for value in found if np.isfinite(value)]  # a slice of few labels
    for split in ("train", "val"):
        assert len(agreement[1.0, split]) >= 2 and min(agreement[1.0, split]) > 0.9  # blur, bias, noise differ
        assert np.mean(agreement[0.0, split]) < 0.7
    with pytest.raises(ValueError, match="between 0 and 1"):
        BrainDataModule(folder, same_contrast=-0.1)
