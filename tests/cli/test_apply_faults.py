"""``lightning-reg apply`` never writes a silently wrong file: two runs into one new ``--out`` keep the
first result and refuse the second; a mapping into nothing or through a near-singular matrix is
refused; an integer image is moved as an image unless it is a label map; ``--out`` naming a folder
or a link is one line."""

from __future__ import annotations

import re

import nibabel as nib
import numpy as np
import pytest
from helpers import in_process, killed_writer_of, start_lightning_reg

from lightning_reg.files.ants import save_ants_affine


@pytest.fixture
def shifted(tmp_path, pair):
    """A transforms folder holding an affine that shifts by 3 mm along x (ANTs' 0GenericAffine.mat)."""
    folder = tmp_path / "transforms"
    folder.mkdir()
    matrix = np.eye(4)
    matrix[0, 3] = 3.0
    save_ants_affine(matrix, folder / "0GenericAffine.mat")
    return folder


def _apply(tmp_path, pair, transforms, *extra, out="moved.nii.gz", image="moving"):
    arguments = ["apply", "--reference", pair["fixed"], "--input", pair[image], "--transforms", transforms]
    return in_process([*arguments, "--out", tmp_path / out, *extra])


def test_two_applies_into_one_new_file_keep_one_result_and_refuse_the_other(tmp_path, pair, shifted):
    alone = {}
    for image in ("moving", "fixed"):  # what each would write alone
        assert _apply(tmp_path, pair, shifted, out=f"{image}.alone.nii.gz", image=image).returncode == 0
        alone[image] = nib.load(tmp_path / f"{image}.alone.nii.gz").get_fdata()
    for round_ in range(3):
        out = tmp_path / f"race{round_}.nii.gz"
        runs = [
            start_lightning_reg(
                ["apply", "--reference", pair["fixed"], "--input", pair[image], "--transforms", shifted, "--out", out],
                tmp_path,
            )
            for image in ("moving", "fixed")
        ]
        results = [(run.wait(timeout=300), run.stderr.read()) for run in runs]
        assert sorted(code for code, _ in results) == [0, 2], results
        loser = next(text for code, text in results if code == 2)
        assert len(loser.strip().splitlines()) == 1, loser
        assert "was written by another process while this one worked; it was kept" in loser or "exists" in loser
        winner = ("moving", "fixed")[[code for code, _ in results].index(0)]
        assert np.array_equal(nib.load(out).get_fdata(), alone[winner])
    assert not list(tmp_path.glob(".partial-*"))


def test_a_mapping_into_nothing_is_refused_and_a_partial_one_warned(tmp_path, pair):
    folder = tmp_path / "far"
    folder.mkdir()
    far = np.eye(4)
    far[:3, 3] = 500.0
    save_ants_affine(far, folder / "0GenericAffine.mat")
    done = _apply(tmp_path, pair, folder)
    assert done.returncode == 2 and "map no voxel of the reference into" in done.stderr
    assert not (tmp_path / "moved.nii.gz").exists()
    half = np.eye(4)
    half[0, 3] = 20.0  # 20 of the 30 mm along x
    save_ants_affine(half, folder / "0GenericAffine.mat")
    done = _apply(tmp_path, pair, folder)
    assert done.returncode == 0 and re.search(r"warning: only 3\d% of the reference grid maps inside", done.stderr)


@pytest.mark.parametrize("scale", [1e-6, 0.0, 1e5])
def test_a_near_singular_affine_is_refused_forward_and_inverse(tmp_path, pair, scale):
    folder = tmp_path / "squeeze"
    folder.mkdir()
    save_ants_affine(np.diag([1.0, scale, 1.0, 1.0]), folder / "0GenericAffine.mat")
    for extra in ([], ["--inverse"]):
        done = _apply(tmp_path, pair, folder, *extra)
        assert done.returncode == 2, done.stderr
        assert "singular or near-singular affine" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "moved.nii.gz").exists()


def test_integers_are_moved_as_an_image_unless_they_are_a_label_map(tmp_path, pair, shifted):
    fixed = nib.load(pair["fixed"])
    values = np.asarray(fixed.dataobj)
    scaled = nib.Nifti1Image((values * 1000).astype(np.int16), fixed.affine)
    scaled.header.set_slope_inter(0.001, 0.0)  # an int16 image stored with scl_slope: fractions on reading
    nib.save(scaled, tmp_path / "scaled.nii.gz")
    channels = np.stack([(values * 100).astype(np.int16)] * 2, axis=-1)
    nib.save(nib.Nifti1Image(channels, fixed.affine), tmp_path / "channels.nii.gz")
    pair = {**pair, "scaled": tmp_path / "scaled.nii.gz", "channels": tmp_path / "channels.nii.gz"}
    for image in ("scaled", "channels"):
        done = _apply(tmp_path, pair, shifted, "--interpolation", "nearest", out=f"{image}.out.nii.gz", image=image)
        assert done.returncode == 0, done.stderr
        moved = nib.load(tmp_path / f"{image}.out.nii.gz")
        assert moved.get_data_dtype() == np.float32 and moved.shape == nib.load(pair[image]).shape
        done = _apply(tmp_path, pair, shifted, "--interpolation", "label", out=f"{image}.label.nii.gz", image=image)
        assert done.returncode == 2 and "needs a label map" in done.stderr
    done = _apply(tmp_path, pair, shifted, "--interpolation", "label", out="seg.nii.gz", image="moving_seg")
    assert done.returncode == 0 and np.issubdtype(nib.load(tmp_path / "seg.nii.gz").get_data_dtype(), np.integer)


def test_out_naming_a_folder_or_a_link_is_one_line(tmp_path, pair, shifted):
    (tmp_path / "results").mkdir()
    done = _apply(tmp_path, pair, shifted, out="results")
    assert done.returncode == 2 and "is a folder: name the NIfTI file to write" in done.stderr
    (tmp_path / "target.nii.gz").write_bytes(b"the user's file")
    (tmp_path / "link.nii.gz").symlink_to(tmp_path / "target.nii.gz")
    done = _apply(tmp_path, pair, shifted, "--overwrite", out="link.nii.gz")
    assert done.returncode == 2 and "is a symbolic link" in done.stderr
    assert (tmp_path / "target.nii.gz").read_bytes() == b"the user's file"
    assert all(len(text.strip().splitlines()) == 1 for text in (done.stderr,))


def test_a_rerun_of_apply_removes_what_a_killed_apply_left(tmp_path, pair, shifted):
    killed_writer_of(tmp_path / "moved.nii.gz")
    assert len(list(tmp_path.glob(".partial-*-moved.nii.gz"))) == 1
    done = _apply(tmp_path, pair, shifted)
    assert done.returncode == 0, done.stderr
    assert not list(tmp_path.glob(".partial-*")) and (tmp_path / "moved.nii.gz").is_file()
