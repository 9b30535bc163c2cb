"""``register --moving-mask``: a lesion masked out does not pull the map; bad masks are one line."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
from helpers import lightning_reg

from lightning_reg.data.synthetic import warped_pair


def _write(folder):
    fixed = warped_pair((64, 64), magnitude=0.0, seed=1)["fixed"][0, 0].numpy()
    rows, columns = np.meshgrid(np.arange(64.0), np.arange(64.0), indexing="ij")
    distance = np.hypot(rows - 40, columns - 24)
    moving = np.where(distance <= 6, fixed.max(), fixed)
    for name, array in (
        ("fixed", fixed),
        ("moving", moving),
        ("mask", (distance > 9).astype(np.uint8)),
        ("empty", np.zeros((64, 64), np.uint8)),
        ("small", np.ones((32, 32), np.uint8)),
    ):
        nib.save(nib.Nifti1Image(array, np.eye(4)), folder / f"{name}.nii.gz")
    return distance <= 12


def _register(folder, out, *options):
    return lightning_reg(
        [
            "register",
            "--fixed",
            "fixed.nii.gz",
            "--moving",
            "moving.nii.gz",
            "--iterations",
            "100",
            "50",
            "25",
            "--quiet",
            "--out",
            out,
            *options,
        ],
        folder,
    )


def test_a_masked_lesion_does_not_pull_the_map(tmp_path):
    near = _write(tmp_path)
    moved = {}
    for out, options in (("plain", []), ("masked", ["--moving-mask", "mask.nii.gz"])):
        done = _register(tmp_path, out, *options)
        assert done.returncode == 0, done.stderr
        warp = nib.load(tmp_path / out / "warp.nii.gz").get_fdata()[:, :, 0, 0, :]
        moved[out] = float(np.linalg.norm(warp, axis=-1)[near].mean())
    assert moved["plain"] > 1.5 and moved["masked"] < 0.45 * moved["plain"]  # mm = pixels here
    report = json.loads((tmp_path / "masked" / "metrics.json").read_text())
    assert report["masks"] == {"fixed": None, "moving": str(tmp_path / "mask.nii.gz")}


def test_bad_masks_are_one_line(tmp_path):
    _write(tmp_path)
    for options, expected in (
        (["--moving-mask", "empty.nii.gz"], "is empty"),
        (["--fixed-mask", "small.nii.gz"], "does not lie on the voxel grid"),
        (["--fixed-mask", "missing.nii.gz"], "file not found"),
    ):
        done = _register(tmp_path, "out", *options)
        assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert not (tmp_path / "out").exists()
