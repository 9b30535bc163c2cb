"""Further anatomies from aseg label maps (issue 41): each map in its own space onto the common grid by
its centroid, the structures kept and the rest dropped, pairs within one label family, the validation
maps apart, tissue-realistic contrasts, and clear errors for what is not a label map."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
import torch

from lightning_reg.data.brains import structures
from lightning_reg.data.brains.datamodule import BrainDataModule
from lightning_reg.data.brains.grid import GRID_SHAPE, TISSUE
from lightning_reg.data.brains.label_maps import ASEG_STRUCTURES, read_label_map
from lightning_reg.data.brains.structures import structure_table
from lightning_reg.data.brains.tissue_tables import CORTEX, DEEP, FLUID, WHITE, table_means, tissue_classes
from lightning_reg.errors import InputError


def aseg_map(shift_mm=(0.0, 0.0, 0.0), seed=0) -> nib.Nifti1Image:
    """A head-sized aseg-like map, 1.5 mm voxels stored LIA as FreeSurfer's: left hemisphere 2/3,
    right 41/42, ventricles 4/43, thalami 10/49, a skull (label 165) and a vessel (30) around and in."""
    rng = np.random.default_rng(seed)
    n = 112
    index = np.stack(np.meshgrid(*[np.arange(n)] * 3, indexing="ij"), -1).astype(float)
    # LIA voxel axes: i runs to the left, j inferior, k anterior
    affine = np.array([[-1.5, 0, 0, 84.0], [0, 0, 1.5, -84.0], [0, -1.5, 0, 84.0], [0, 0, 0, 1]])
    affine[:3, 3] += shift_mm
    world = index @ affine[:3, :3].T + affine[:3, 3] - np.asarray(shift_mm)
    x, y, z = world[..., 0], world[..., 1], world[..., 2]
    radius = np.sqrt((x / 65) ** 2 + (y / 80) ** 2 + (z / 60) ** 2) * (1 + 0.02 * rng.standard_normal())
    labels = np.zeros((n,) * 3, np.float32)
    left = x < 0
    labels[(radius < 0.85) & (radius > 0.3)] = 41
    labels[(radius < 0.85) & (radius > 0.3) & left] = 2
    labels[(radius >= 0.85) & (radius < 1.0)] = 42
    labels[(radius >= 0.85) & (radius < 1.0) & left] = 3
    labels[radius <= 0.3] = 43
    labels[(radius <= 0.3) & left] = 4
    labels[(np.abs(x + 15) < 8) & (np.abs(y) < 10) & (np.abs(z) < 8)] = 10
    labels[(np.abs(x - 15) < 8) & (np.abs(y) < 10) & (np.abs(z) < 8)] = 49
    labels[(radius >= 1.05) & (radius < 1.15)] = 165
    labels[(np.abs(x) < 2) & (np.abs(z - 30) < 2)] = 30
    return nib.Nifti1Image(labels, affine)


@pytest.fixture(scope="module")
def maps(tmp_path_factory):
    folder = tmp_path_factory.mktemp("label_maps")
    for number in range(1, 5):
        nib.save(aseg_map((10.0 * number, -5.0 * number, 3.0), seed=number), folder / f"seg_{number:02d}.nii.gz")
    return folder


def test_a_map_in_its_own_space_lands_centred_on_the_grid_with_its_structures_only(maps):
    labels = read_label_map(maps / "seg_03.nii.gz")
    assert labels.shape == GRID_SHAPE
    assert set(np.unique(labels).tolist()) <= {0, *ASEG_STRUCTURES}  # skull (165) and vessel (30) gone
    assert {2, 3, 41, 42, 4, 43, 10, 49} <= set(np.unique(labels).tolist())
    centre = np.argwhere(labels > 0).mean(0)
    assert np.allclose(centre, (np.asarray(GRID_SHAPE) - 1) / 2, atol=1.0)  # the shift of its own space undone
    # the grid is RAS: the left hemisphere (2, 3) lies at low x, whatever the file's orientation (LIA)
    assert np.argwhere(labels == 3)[:, 0].mean() < np.argwhere(labels == 42)[:, 0].mean()
    # 1.5 mm voxels onto 2 mm: the brain keeps its size in millimetres
    extent = np.ptp(np.argwhere(labels > 0)[:, 0]) * 2.0
    assert 118 < extent < 134  # its x semi-axis is 65 mm


def test_what_is_not_an_aseg_label_map_gets_a_clear_error(tmp_path):
    intensities = nib.Nifti1Image(np.random.rand(20, 20, 20).astype(np.float32), np.eye(4))
    nib.save(intensities, tmp_path / "t1.nii.gz")
    with pytest.raises(InputError, match="whole numbers"):
        read_label_map(tmp_path / "t1.nii.gz")
    nib.save(nib.Nifti1Image(np.ones((4, 4, 4, 2), np.int16), np.eye(4)), tmp_path / "four.nii.gz")
    with pytest.raises(InputError, match="3D volume"):
        read_label_map(tmp_path / "four.nii.gz")
    nib.save(nib.Nifti1Image(np.full((8, 8, 8), 500, np.int16), np.eye(4)), tmp_path / "skull.nii.gz")
    with pytest.raises(InputError, match="aseg structures"):
        read_label_map(tmp_path / "skull.nii.gz")
    (tmp_path / "broken.nii.gz").write_bytes(b"\x1f\x8b not really")
    with pytest.raises(InputError, match="not a readable"):
        read_label_map(tmp_path / "broken.nii.gz")


def test_the_data_module_adds_the_maps_keeps_validation_maps_apart_and_pairs_within_a_family(built, maps, tmp_path):
    folder, _, _ = built
    data = BrainDataModule(
        folder,
        dims=2,
        train_pairs=24,
        val_pairs=6,
        shapes=0.0,
        label_maps=maps,
        val_maps=["seg_04"],
        tissue_contrast=0.5,
    )
    data.setup("fit")
    assert data.split_maps == {"train": ["seg_01", "seg_02", "seg_03"], "val": ["seg_04"]}
    families = {"9861": "dk", "10021": "dk", "12876": "dk", "14380": "dk"} | {f"seg_0{n}": "aseg" for n in range(1, 5)}
    seen = set()
    for split, loader in (("train", data.train_dataloader()), ("val", data.val_dataloader())):
        dataset = loader.dataset
        for index in range(len(dataset)):
            item = dataset[index]
            first, second = item["id"].split("-")[2:]
            seen |= {first, second}
            assert families[first] == families[second]  # their labels mean the same structures
            assert (first == "seg_04") == (split == "val") or families[first] == "dk"
            assert int(item["fixed_seg"].max()) < TISSUE
            if families[first] == "aseg":
                assert set(item["fixed_seg"].unique().tolist()) <= {0, *ASEG_STRUCTURES}
    assert {"seg_01", "seg_04"} <= seen and "9861" in seen
    with pytest.raises(InputError, match="not in"):
        BrainDataModule(folder, label_maps=maps, val_maps=["seg_09"]).setup("fit")
    with pytest.raises(InputError, match="not found"):
        BrainDataModule(folder, label_maps=tmp_path / "nowhere").setup("fit")


def test_tissue_tables_keep_one_tissue_alike_and_order_the_tissues_as_mri_does():
    classes = tissue_classes("aseg")
    assert classes[2] == WHITE and classes[3] == CORTEX and classes[10] == DEEP and classes[4] == FLUID
    assert classes[TISSUE] == WHITE and bool((tissue_classes("dk")[1:TISSUE] == CORTEX).all())
    for contrast, order in (("t1", (WHITE, DEEP, CORTEX, FLUID)), ("t2", (FLUID, CORTEX, DEEP, WHITE))):
        for seed in range(20):
            means = table_means("aseg", contrast, torch.Generator().manual_seed(seed))
            by_class = {tissue: means[classes == tissue] for tissue in (WHITE, CORTEX, DEEP, FLUID)}
            for values in by_class.values():
                assert float(values.max() - values.min()) <= 0.0601  # one tissue's structures nearly alike
            assert float(means[0]) == 0.0
            centres = [float(by_class[tissue].mean()) for tissue in order]
            assert centres[0] > centres[-1] + 0.3  # the strong contrast of each weighting holds
    with pytest.raises(ValueError, match="family"):
        tissue_classes("mni")


def test_structure_classes_name_one_tissue_alike_in_both_families():
    aseg, dk = structure_table("aseg"), structure_table("dk")
    assert aseg[3] == aseg[42] == dk[1] == dk[TISSUE - 1] == structures.CORTEX  # every DK parcel is cortex
    assert aseg[2] == aseg[41] == aseg[TISSUE] == dk[TISSUE] == structures.WHITE
    own = [int(aseg[label]) for label in structures.OWN_CLASS]
    assert sorted(own) == list(range(3, structures.STRUCTURE_CLASSES))  # one class each, none shared
    assert aseg[0] == dk[0] == structures.BACKGROUND
    assert bool((structure_table("shapes") == structures.IGNORED).all())
    with pytest.raises(ValueError, match="unknown label family"):
        structure_table("dkt")


def test_every_item_carries_its_structures_on_its_own_grid(built, maps):
    folder, _, _ = built
    data = BrainDataModule(
        folder, dims=2, train_pairs=8, shapes=0.25, label_maps=maps, val_maps=["seg_04"], anisotropy=0.5
    )
    data.setup("fit")
    dataset = data.train_dataloader().dataset
    for index in range(len(dataset)):
        item = dataset[index]
        first = item["id"].split("-")[2]
        for side in ("fixed", "moving"):
            seg, classes = item[f"{side}_seg"], item[f"{side}_structures"]
            assert classes.shape == seg.shape and classes.dtype == torch.long
            if first == "shapes":
                assert bool((classes == structures.IGNORED).all())
                continue
            family = "aseg" if first.startswith("seg_") else "dk"
            inside = seg > 0
            assert torch.equal(classes[inside], structure_table(family)[seg[inside]])
            assert set(classes[~inside].unique().tolist()) <= {structures.BACKGROUND, structures.WHITE}
