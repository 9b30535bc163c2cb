"""Preprocessing, training augmentation and the domain-shift presets do what they say."""

from __future__ import annotations

import pytest
import torch
import torchio as tio

from lightning_reg.data import SyntheticDataModule
from lightning_reg.data.augmentation import augmentation
from lightning_reg.data.preprocessing import LookupLabels, read_label_lookup
from lightning_reg.data.shifts import SHIFTS, RandomContrastRemap, apply_seeded, shift_transform
from lightning_reg.data.subjects import subject_tensors, tensor_subject
from lightning_reg.data.synthetic import random_labels


def labelled_subject(shape=(24, 28, 20)) -> tio.Subject:
    """A subject whose image is the mask of its label 1, so alignment can be read off."""
    labels = random_labels(shape, num_labels=3, smoothness=8.0, generator=torch.Generator().manual_seed(0))[0]
    return tensor_subject((labels == 1).float(), labels)


def dice(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.mark.parametrize("preset", ["spatial", "full"])
def test_spatial_augmentation_moves_image_and_labels_together(preset):
    torch.manual_seed(0)
    moved = 0
    for _ in range(4):
        subject = tio.Compose(augmentation(preset))(labelled_subject())
        image, seg = subject["image"].data, subject["seg"].data
        original = labelled_subject()["seg"].data == 1
        moved += int(dice(seg == 1, original) < 0.97)
        if preset == "spatial":  # intensity steps change the values; only the geometry is compared
            # linear (image) vs nearest (labels) costs a few % at boundaries; moving only one of
            # them gives about 0.55 here
            assert dice(image > 0.5, seg == 1) > 0.8
        else:
            assert torch.corrcoef(torch.stack([image.flatten(), (seg == 1).flatten().float()]))[0, 1] > 0.5
    assert moved >= 2  # it is random and does move things


def test_spatial_augmentation_of_a_slice_stays_in_its_plane():
    torch.manual_seed(0)
    labels = random_labels((32, 28), num_labels=3, smoothness=8.0, generator=torch.Generator().manual_seed(0))[0]
    for _ in range(6):
        subject = tio.Compose(augmentation("spatial", dims=2))(tensor_subject((labels == 1).float(), labels))
        image, seg = subject["image"].data, subject["seg"].data
        assert image.shape == (1, 32, 28, 1) and (seg > 0).float().mean() > 0.3
        assert dice(image > 0.5, seg == 1) > 0.8


def test_intensity_augmentation_changes_images_and_keeps_labels():
    torch.manual_seed(1)
    subject = labelled_subject()
    augmented = tio.Compose(augmentation("intensity") + [tio.RandomGamma(log_gamma=(0.3, 0.3))])(subject)
    assert torch.equal(augmented["seg"].data, subject["seg"].data)
    assert not torch.allclose(augmented["image"].data, subject["image"].data)


def test_shifts_are_deterministic_keep_labels_and_reject_unknown_names():
    subject = labelled_subject()
    subject["image"].set_data(subject["image"].data / 4)
    for name in SHIFTS[1:]:
        transform = shift_transform(name, dims=3)
        one, two = apply_seeded(transform, subject, 5), apply_seeded(transform, subject, 5)
        other = apply_seeded(transform, subject, 6)
        assert torch.equal(one["image"].data, two["image"].data), name
        assert torch.equal(one["seg"].data, subject["seg"].data), name
        assert not torch.allclose(one["image"].data, subject["image"].data), name
        if not name.startswith("anisotropy") or "+" in name:  # anisotropy itself draws nothing
            assert not torch.equal(one["image"].data, other["image"].data), name  # each image its own draw
    assert shift_transform("clean", 3) is None and shift_transform(None, 2) is None
    for bad in ("blur", "anisotropy", "anisotropy0.5", "noise+bogus"):
        with pytest.raises(ValueError, match="shift"):
            shift_transform(bad, 3)


def test_anisotropy_thickens_slices_along_the_last_axis_only():
    shape = (24, 24, 24)
    axes = torch.meshgrid(*[torch.arange(n) for n in shape], indexing="ij")

    def correlation_after(pattern):
        subject = tensor_subject(pattern.unsqueeze(0))
        shifted = apply_seeded(shift_transform("anisotropy4", 3), subject, 0)["image"].data[0]
        return torch.corrcoef(torch.stack([shifted.flatten(), pattern.flatten()]))[0, 1]

    profile = torch.rand(24, generator=torch.Generator().manual_seed(0))
    assert correlation_after(profile[axes[0]]) > 0.99  # fine detail along the first axis: kept
    assert correlation_after(profile[axes[2]]) < 0.7  # the same detail along the last axis: lost


def test_contrast_remap_is_increasing():
    ramp = torch.linspace(0, 1, 1000).reshape(1, 10, 10, 10)
    torch.manual_seed(0)
    remapped = RandomContrastRemap()(tio.ScalarImage(tensor=ramp)).data.flatten()
    assert (remapped.diff() >= -1e-7).all()
    assert (remapped - ramp.flatten()).abs().max() > 0.02
    assert remapped[0] == pytest.approx(0.0) and remapped[-1] == pytest.approx(1.0)


def test_synthetic_test_pairs_under_a_shift_differ_only_in_their_images():
    clean = next(iter(SyntheticDataModule(shape=(32, 32), test_pairs=1).test_dataloader()))
    data = SyntheticDataModule(shape=(32, 32), test_pairs=1, shift="anisotropy4+noise")
    shifted = next(iter(data.test_dataloader()))
    assert torch.equal(shifted["fixed_seg"], clean["fixed_seg"])
    assert shifted["fixed"].shape == clean["fixed"].shape
    assert (shifted["fixed"] - clean["fixed"]).abs().mean() > 0.02
    assert torch.equal(
        next(iter(data.train_dataloader()))["fixed"],
        next(iter(SyntheticDataModule(shape=(32, 32)).train_dataloader()))["fixed"],
    )


def test_label_lookup_maps_codes_and_sends_the_rest_to_background(tmp_path):
    table = tmp_path / "lut.tsv"
    table.write_text("code\tlabel\n2\t1\n41\t2\n")
    lookup = read_label_lookup(str(table))
    assert lookup == {2: 1, 41: 2}
    seg = torch.tensor([0, 2, 41, 1035, 17]).reshape(1, 5, 1, 1)
    subject = tio.Subject(seg=tio.LabelMap(tensor=seg))
    assert LookupLabels(lookup)(subject)["seg"].data.flatten().tolist() == [0, 1, 2, 0, 0]
    assert read_label_lookup("aseg")[17] == 14
    with pytest.raises(ValueError, match="no such file"):
        read_label_lookup(str(tmp_path / "absent.tsv"))


def test_two_d_subjects_come_back_as_two_d_tensors_with_3x3_affines():
    affine = torch.tensor([[0.0, -2.0, 5.0], [1.5, 0.0, -3.0], [0.0, 0.0, 1.0]], dtype=torch.float64)
    image = torch.rand(1, 12, 10)
    tensors = subject_tensors(tensor_subject(image, affine=affine), 2, "test")
    assert torch.equal(tensors["image"], image)
    assert torch.equal(tensors["affine"], affine)
