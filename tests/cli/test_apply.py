"""``lightning-reg apply``: register's own transforms reproduce its outputs, forward and inverse;
labels keep their values; bad input is one line."""

from __future__ import annotations

import shutil

import nibabel as nib
import numpy as np
import pytest
from helpers import lightning_reg


@pytest.fixture(scope="module")
def registered(nifti_pair, tmp_path_factory):
    folder = tmp_path_factory.mktemp("apply")
    done = lightning_reg(
        [
            "register",
            "--fixed",
            nifti_pair["fixed"],
            "--moving",
            nifti_pair["moving"],
            "--fixed-seg",
            nifti_pair["fixed_seg"],
            "--moving-seg",
            nifti_pair["moving_seg"],
            "--init",
            "affine",
            "--scales",
            "2",
            "1",
            "--iterations",
            "60",
            "30",
            "--quiet",
            "--out",
            folder / "out",
        ],
        folder,
    )
    assert done.returncode == 0, done.stderr
    return folder


def _apply(folder, *arguments):
    return lightning_reg(["apply", *arguments], folder)


def _data(path) -> np.ndarray:
    return np.asarray(nib.load(path).dataobj)


def test_apply_reproduces_the_warped_image_and_labels(registered, nifti_pair):
    done = _apply(
        registered,
        "--reference",
        nifti_pair["fixed"],
        "--input",
        nifti_pair["moving"],
        "--transforms",
        "out",
        "--out",
        "warped.nii.gz",
    )
    assert done.returncode == 0, done.stderr
    ours, written = _data(registered / "warped.nii.gz"), _data(registered / "out" / "warped.nii.gz")
    assert np.abs(ours - written).max() < 1e-3 * np.abs(written).max()
    assert np.allclose(nib.load(registered / "warped.nii.gz").affine, nib.load(nifti_pair["fixed"]).affine)
    done = _apply(
        registered,
        "--reference",
        nifti_pair["fixed"],
        "--input",
        nifti_pair["moving_seg"],
        "--transforms",
        "out",
        "--interpolation",
        "label",
        "--out",
        "warped_seg.nii.gz",
    )
    assert done.returncode == 0, done.stderr
    labels = _data(registered / "warped_seg.nii.gz")
    assert np.issubdtype(labels.dtype, np.integer)
    assert (labels == _data(registered / "out" / "warped_seg.nii.gz")).mean() > 0.999
    assert set(np.unique(labels)) <= set(np.unique(_data(nifti_pair["moving_seg"])))


def test_apply_inverse_maps_the_warped_image_back_onto_the_moving_grid(registered, nifti_pair):
    done = _apply(
        registered,
        "--reference",
        nifti_pair["moving"],
        "--input",
        registered / "out" / "warped.nii.gz",
        "--transforms",
        "out",
        "--inverse",
        "--out",
        "back.nii.gz",
    )
    assert done.returncode == 0, done.stderr
    back, moving = _data(registered / "back.nii.gz"), _data(nifti_pair["moving"])
    warped = _data(registered / "out" / "warped.nii.gz")
    inside = back != 0
    assert np.corrcoef(back[inside], moving[inside])[0, 1] > 0.98
    # the warped image read on the moving grid without the inverse is further from it
    assert np.abs(back - moving)[inside].mean() < 0.5 * np.abs(warped - moving)[inside].mean()


def test_bad_input_is_one_line(registered, nifti_pair, tmp_path):
    common = ["--reference", nifti_pair["fixed"], "--input", nifti_pair["moving"]]
    cases = {
        "no transforms at": [*common, "--transforms", tmp_path / "nothing", "--out", tmp_path / "a.nii.gz"],
        "exists; pass --overwrite": [*common, "--transforms", "out", "--out", tmp_path / "exists.nii.gz"],
        "one of the inputs": [*common, "--transforms", "out", "--out", nifti_pair["moving"], "--overwrite"],
        "inside the transforms folder": [*common, "--transforms", "out", "--out", "out/x.nii.gz"],
        "needs a label map": [*common, "--transforms", "out", "--interpolation", "label", "--out", tmp_path / "b.nii"],
        "invalid choice": [*common, "--transforms", "out", "--interpolation", "cubic", "--out", tmp_path / "c.nii"],
    }
    (tmp_path / "exists.nii.gz").write_bytes(b"the user's file")
    composed = tmp_path / "composed"
    composed.mkdir()
    shutil.copy(registered / "out" / "warp.nii.gz", composed / "warp.nii.gz")
    cases["has no inverse"] = [*common, "--transforms", composed, "--inverse", "--out", tmp_path / "d.nii.gz"]
    for expected, arguments in cases.items():
        done = _apply(registered, *arguments)
        assert done.returncode == 2 and expected in done.stderr, (expected, done.stderr)
        assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert (tmp_path / "exists.nii.gz").read_bytes() == b"the user's file"
    # the composed field alone still applies forward, as one transform
    done = _apply(registered, *common, "--transforms", composed, "--out", tmp_path / "e.nii.gz")
    assert done.returncode == 0, done.stderr
    assert np.abs(_data(tmp_path / "e.nii.gz") - _data(registered / "out" / "warped.nii.gz")).max() < 1e-2
