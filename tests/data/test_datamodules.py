"""The NIfTI data modules read the real layouts (Learn2Reg OASIS, neurite-oasis, BIDS, a CSV
manifest) through torchio, and broken trees get clear errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
from trees import ASEG_CODES, SHAPE, write_scan

from lightning_reg.data import ABCDDataModule, OASISDataModule, PairsDataModule


def first(loader) -> dict:
    return next(iter(loader))


def canonical(path) -> nib.Nifti1Image:
    return nib.as_closest_canonical(nib.load(str(path)))


def test_learn2reg_layout_holds_out_the_validation_subjects_and_reads_canonical_images(learn2reg_tree):
    data = OASISDataModule(learn2reg_tree)
    data.setup("fit")
    assert [record.name for record in data.splits.train_subjects] == ["OASIS_0001", "OASIS_0002"]
    batch = first(data.train_dataloader())
    assert batch.get("unreadable") == [""]  # the files of the pair read; the module takes the key off
    batch = data.on_before_batch_transfer(batch, 0)
    assert set(batch) == {"fixed", "moving", "fixed_seg", "moving_seg", "fixed_affine", "moving_affine", "id"}
    assert batch["fixed"].dtype == torch.float32 and batch["fixed_seg"].dtype == torch.int64
    assert batch["fixed"].min() >= 0 and batch["fixed"].max() <= 1

    data.setup("test")
    batch = first(data.test_dataloader())
    assert batch["id"] == ["OASIS_0004_OASIS_0005"]
    label = canonical(learn2reg_tree / "labelsTr" / "OASIS_0004_0000.nii.gz")
    assert batch["fixed_seg"].shape == (1, 1, *label.shape)
    assert np.array_equal(batch["fixed_seg"][0, 0].numpy(), np.asarray(label.dataobj))
    assert np.allclose(batch["fixed_affine"][0].numpy(), label.affine)
    # the header's anisotropic spacing survives (1.2, 1.0, 1.5 mm, reordered by reorientation)
    spacing = sorted(batch["fixed_affine"][0, :3, :3].norm(dim=0).tolist())
    assert spacing == pytest.approx([1.0, 1.2, 1.5])


def test_neurite_layout_follows_the_subject_list_in_3d_and_2d(neurite_tree):
    data = OASISDataModule(neurite_tree, val_subjects=2, test_subjects=3)
    data.setup("test")
    assert [f"{f.name}_{m.name}" for f, m in data.splits.test] == ["OAS1_0004_OAS1_0005", "OAS1_0005_OAS1_0006"]
    assert [record.name for record in data.splits.train_subjects] == ["OAS1_0007", "OAS1_0001"]

    slices = OASISDataModule(neurite_tree, dims=2, val_subjects=2, test_subjects=3)
    slices.setup("test")
    batch = first(slices.test_dataloader())
    assert batch["fixed"].shape == (1, 1, SHAPE[0], SHAPE[1])
    assert batch["fixed_affine"].shape == (1, 3, 3)
    label = canonical(neurite_tree / "OASIS_OAS1_0004_MR1" / "slice_seg24.nii.gz")
    assert np.array_equal(batch["fixed_seg"][0, 0].numpy(), np.asarray(label.dataobj)[..., 0])


def test_training_pairs_are_random_seeded_and_of_two_distinct_subjects(neurite_tree):
    def ids(seed):
        data = OASISDataModule(neurite_tree, dims=2, val_subjects=2, test_subjects=2, train_pairs=6, seed=seed)
        data.setup("fit")
        return [pair for batch in data.train_dataloader() for pair in batch["id"]]

    first_run, again, other = ids(0), ids(0), ids(1)
    assert first_run == again and first_run != other and len(first_run) == 6
    held_out = {"OAS1_0004", "OAS1_0005", "OAS1_0006"}
    for pair in first_run:
        fixed, moving = pair[:9], pair[10:]
        assert fixed != moving and not {fixed, moving} & held_out


def test_bids_tree_matches_derivative_label_maps_maps_aseg_codes_and_skips_unlabelled_scans(bids_tree):
    with pytest.warns(UserWarning, match="1 of 9 scans have no label map"):
        data = ABCDDataModule(bids_tree, label_lookup="aseg", val_subjects=2, test_subjects=2)
    data.setup("fit")
    names = [record.name for record in data.splits.train_subjects]
    assert names == ["sub-01", "sub-02_ses-1", "sub-02_ses-2", "sub-03"]
    assert [f"{f.name}_{m.name}" for f, m in data.splits.test] == ["sub-06_sub-07"]
    batch = first(data.test_dataloader())
    raw = np.asarray(canonical(bids_tree / "derivatives/fmriprep/sub-06/anat/sub-06_desc-aseg_dseg.nii.gz").dataobj)
    expected = np.zeros_like(raw)
    for code, label in ((2, 1), (41, 20), (17, 14)):  # positions of these codes in ASEG_STRUCTURES, from 1
        expected[raw == code] = label
    assert set(np.unique(raw)) == set(ASEG_CODES)  # 1035 is there, and must become background
    assert np.array_equal(batch["fixed_seg"][0, 0].numpy(), expected)


def test_bids_tree_with_two_matching_label_maps_asks_for_a_narrower_pattern(bids_tree):
    extra = bids_tree / "derivatives/fmriprep/sub-01/anat/sub-01_desc-aparcaseg_dseg.nii.gz"
    shutil.copy(bids_tree / "derivatives/fmriprep/sub-01/anat/sub-01_desc-aseg_dseg.nii.gz", extra)
    with pytest.raises(ValueError, match="several label maps match.*seg_glob"):
        ABCDDataModule(bids_tree, val_subjects=2, test_subjects=2).setup("fit")
    with pytest.warns(UserWarning):
        data = ABCDDataModule(bids_tree, seg_glob="*_desc-aseg_dseg.nii.gz", val_subjects=2, test_subjects=2)
    data.setup("fit")
    assert len(data.splits.train_subjects) == 4


def test_csv_manifest_splits_pairs_and_resolves_paths_next_to_it(manifest_file):
    data = PairsDataModule(manifest_file)
    data.setup("fit")
    assert [f"{f.name}_{m.name}" for f, m in data.splits.train_pairs] == ["scan0_scan1", "scan1_scan2"]
    assert first(data.val_dataloader())["id"] == ["scan2_scan3"]
    assert first(data.test_dataloader())["id"] == ["scan3_scan4"]
    unsplit = manifest_file.with_name("all.csv")
    unsplit.write_text("fixed,moving\nimages/scan0.nii.gz,images/scan1.nii.gz\n")
    data = PairsDataModule(unsplit)
    data.setup("test")
    batch = first(data.test_dataloader())
    assert "fixed_seg" not in batch and batch["id"] == ["scan0_scan1"]


def test_resampling_and_pad_crop_set_the_grid(learn2reg_tree):
    data = OASISDataModule(learn2reg_tree, spacing=2.0)
    data.setup("test")
    batch = first(data.test_dataloader())
    assert batch["fixed_affine"][0, :3, :3].norm(dim=0).tolist() == pytest.approx([2.0, 2.0, 2.0])
    assert batch["fixed"].shape[2:] == batch["fixed_seg"].shape[2:]
    assert max(batch["fixed"].shape[2:]) < max(SHAPE)

    sized = OASISDataModule(learn2reg_tree, size=(16, 32, 16), batch_size=2)
    sized.setup("test")
    batch = first(sized.test_dataloader())
    assert batch["fixed"].shape == (2, 1, 16, 32, 16) and batch["moving_seg"].shape == (2, 1, 16, 32, 16)


def test_pairs_of_different_sizes_in_one_batch_are_a_clear_error(learn2reg_tree):
    write_scan(
        learn2reg_tree / "imagesTr" / "OASIS_0003_0000.nii.gz",
        learn2reg_tree / "labelsTr" / "OASIS_0003_0000.nii.gz",
        seed=3,
        shape=(22, 24, 18),
    )
    data = OASISDataModule(learn2reg_tree, batch_size=2)
    data.setup("test")
    with pytest.raises(ValueError, match="different shapes.*--data.size"):
        first(data.test_dataloader())


def _drop_label(root):
    (root / "OASIS_OAS1_0002_MR1" / "aligned_seg35.nii.gz").unlink()


def _mismatched_label(root):
    folder = root / "OASIS_OAS1_0002_MR1"
    write_scan(folder / "aligned_norm.nii.gz", folder / "aligned_seg35.nii.gz", seed=1, seg_shape=(20, 24, 17))


def _empty(root):
    for child in root.iterdir():
        shutil.rmtree(child) if child.is_dir() else child.unlink()


def _nan_image(root):
    folder = root / "OASIS_OAS1_0005_MR1"
    image = nib.load(folder / "aligned_norm.nii.gz")
    data = image.get_fdata().astype(np.float32)
    data[3, 3, 3] = np.nan
    nib.save(nib.Nifti1Image(data, image.affine), folder / "aligned_norm.nii.gz")


@pytest.mark.parametrize(
    "break_tree, options, message",
    [
        (_drop_label, {}, "OASIS_OAS1_0002_MR1 has no aligned_seg35.nii.gz"),
        (_mismatched_label, {}, "has shape .* must share one voxel grid"),
        (_empty, {}, "holds neither OASIS_dataset.json"),
        (lambda root: None, {"layout": "unknown"}, "unknown OASIS layout"),
        (lambda root: None, {"val_subjects": 4, "test_subjects": 3}, "too few"),
        (
            lambda root: None,
            {"image_file": "slice_norm.nii.gz", "seg_file": "slice_seg24.nii.gz"},
            "is a 2D slice .* set --data.dims 2",
        ),
        (lambda root: None, {"dims": 2, "image_file": "aligned_norm.nii.gz"}, "not a 2D slice; set --data.dims 3"),
        (lambda root: None, {"shift": "blur9"}, "unknown shift 'blur9'"),
        (lambda root: None, {"augmentation": "strong"}, "unknown augmentation 'strong'"),
    ],
)
def test_broken_neurite_trees_and_bad_options_get_clear_errors(neurite_tree, break_tree, options, message):
    break_tree(neurite_tree)
    with pytest.raises(ValueError, match=message):
        OASISDataModule(neurite_tree, **{"val_subjects": 2, "test_subjects": 2, **options}).setup("fit")


def test_an_image_with_nan_is_named_when_it_is_loaded(neurite_tree):
    _nan_image(neurite_tree)
    data = OASISDataModule(neurite_tree, val_subjects=2, test_subjects=2, normalization="none")
    data.setup("test")
    with pytest.raises(ValueError, match="OASIS_OAS1_0005_MR1.*NaN"):
        first(data.test_dataloader())


def test_learn2reg_json_referring_to_absent_files_or_without_pairs_is_a_clear_error(learn2reg_tree):
    (learn2reg_tree / "labelsTr" / "OASIS_0002_0000.nii.gz").unlink()
    with pytest.raises(ValueError, match="refers to ./labelsTr/OASIS_0002_0000.nii.gz, which is not in"):
        OASISDataModule(learn2reg_tree).setup("fit")
    manifest = learn2reg_tree / "OASIS_dataset.json"
    description = json.loads(manifest.read_text())
    description["training"] = [e for e in description["training"] if "0002" not in e["image"]]
    description["registration_val"] = []
    manifest.write_text(json.dumps(description))
    with pytest.raises(ValueError, match="no 'registration_val' pairs"):
        OASISDataModule(learn2reg_tree).setup("fit")
    manifest.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        OASISDataModule(learn2reg_tree).setup("fit")


@pytest.mark.parametrize(
    "content, message",
    [
        ("fixed,image\na,b\n", "needs the columns fixed,moving"),
        ("fixed,moving,fixed_seg\na,b,c\n", "only one of fixed_seg/moving_seg"),
        (
            "fixed,moving,fixed_seg,moving_seg\nimages/scan0.nii.gz,images/scan1.nii.gz,labels/scan0.nii.gz,\n",
            "line 2: no file in column moving_seg",
        ),
        ("fixed,moving,split\nimages/scan0.nii.gz,images/scan1.nii.gz,training\n", "split 'training' is not one of"),
        ("fixed,moving\nimages/scan0.nii.gz,images/absent.nii.gz\n", "image not found: .*absent.nii.gz"),
        ("fixed,moving\n", "lists no pairs"),
    ],
)
def test_bad_manifests_get_clear_errors(manifest_file, content, message):
    bad = manifest_file.with_name("bad.csv")
    bad.write_text(content)
    with pytest.raises(ValueError, match=message):
        PairsDataModule(bad).setup("test")


@pytest.mark.parametrize(
    "module, flag",
    [(OASISDataModule, "--data.root"), (ABCDDataModule, "--data.root"), (PairsDataModule, "--data.manifest")],
)
def test_a_module_without_its_folder_or_file_says_which_flag_to_set(module, flag):
    with pytest.raises(ValueError, match=flag):
        module()


def test_the_held_out_split_takes_the_last_subjects_in_order():
    from lightning_reg.data.file_datamodule import held_out_splits
    from lightning_reg.data.subjects import ImageRecord

    subjects = [[ImageRecord(f"s{i}-{visit}", Path(f"s{i}-{visit}.nii.gz")) for visit in range(2)] for i in range(7)]
    splits = held_out_splits(subjects, val_subjects=2, test_subjects=3, found="subjects")
    assert [record.name for record in splits.train_subjects] == ["s0-0", "s0-1", "s1-0", "s1-1"]
    assert [(a.name, b.name) for a, b in splits.val] == [("s2-0", "s3-0")]
    assert [(a.name, b.name) for a, b in splits.test] == [("s4-0", "s5-0"), ("s5-0", "s6-0")]
    no_test = held_out_splits(subjects, val_subjects=2, test_subjects=0, found="subjects")
    assert [(a.name, b.name) for a, b in no_test.val] == [("s5-0", "s6-0")] and no_test.test == []
    with pytest.raises(ValueError, match="7 subjects: too few for 4 validation"):
        held_out_splits(subjects, val_subjects=4, test_subjects=2, found="subjects")
