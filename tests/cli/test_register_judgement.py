"""What ``lightning-reg register`` says of its result is true: a folding warp and an inconsistent
inverse are warned about (one line each, and in ``metrics.json``); label maps and masks are placed by
their headers; ``metrics.json`` and the printed line are strict JSON (``null``, and why, for a value
that is not a number)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from helpers import in_process

FAST = ["--scales", "2", "1", "--iterations", "10", "5", "--quiet", "--no-qc", "--inverse-warp", "skip"]


def _strict(text: str):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def _register(tmp_path, pair, out, *extra, **files):
    files = {"fixed": pair["fixed"], "moving": pair["moving"], **files}
    flags = [item for key, path in files.items() for item in (f"--{key.replace('_', '-')}", path)]
    return in_process(["register", *flags, "--out", tmp_path / out, *extra])


def test_a_folding_warp_is_warned_about_in_one_line_and_in_the_metrics(tmp_path, pair):
    folding = ["--transform", "freeform", "--learning-rate", "4", "--scales", "1", "--iterations", "30"]
    done = _register(tmp_path, pair, "folded", *folding, "--tolerance", "0", "--quiet", "--no-qc")
    assert done.returncode == 0, done.stderr[-3000:]
    report = _strict((tmp_path / "folded" / "metrics.json").read_text())
    assert report["folding_percent"] > 1
    folds = [line for line in done.stderr.splitlines() if "warning: the warp folds" in line]
    assert len(folds) == 1 and f"{report['folding_percent']:.3g} %" in folds[0]
    assert any(said.startswith("the warp folds") for said in report["warnings"])
    assert any(said.startswith("the inverse warp is not the warp's inverse") for said in report["warnings"])
    assert report["inverse"]["converged"] is False and report["inverse"]["consistency_p95_voxels"] > 1
    done = _register(tmp_path, pair, "smooth", *FAST)
    assert done.returncode == 0 and "warning" not in done.stderr
    assert _strict((tmp_path / "smooth" / "metrics.json").read_text())["warnings"] == []


def test_metrics_are_strict_json_with_null_and_why_for_what_is_not_a_number(tmp_path, pair):
    fixed_seg, moving_seg = (np.asarray(nib.load(pair[key]).dataobj) for key in ("fixed_seg", "moving_seg"))
    affine = nib.load(pair["fixed"]).affine
    nib.save(nib.Nifti1Image((fixed_seg > 0).astype(np.int16), affine), tmp_path / "one.nii.gz")
    nib.save(nib.Nifti1Image(2 * (moving_seg > 0).astype(np.int16), affine), tmp_path / "two.nii.gz")
    done = _register(
        tmp_path, pair, "apart", *FAST, fixed_seg=tmp_path / "one.nii.gz", moving_seg=tmp_path / "two.nii.gz"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    printed = _strict(done.stdout.strip().splitlines()[-1])
    report = _strict((tmp_path / "apart" / "metrics.json").read_text())
    assert report["hd95"] is None and printed["hd95"] is None
    assert report["null_values"]["hd95"] == "NaN: no label is present in both label maps"


def _flipped_header(source, target, data_too: bool) -> None:
    """``source`` with its first voxel axis reversed in the header (and in the data when ``data_too``:
    the same label map, stored the other way round)."""
    image = nib.load(source)
    affine = image.affine.copy()
    affine[:, 3] += affine[:, 0] * (image.shape[0] - 1)
    affine[:, 0] *= -1
    data = np.asarray(image.dataobj)
    nib.save(nib.Nifti1Image(data[::-1].copy() if data_too else data, affine), target)


def test_label_maps_and_masks_are_placed_by_their_headers(tmp_path, pair):
    done = _register(tmp_path, pair, "plain", *FAST, fixed_seg=pair["fixed_seg"], moving_seg=pair["moving_seg"])
    assert done.returncode == 0, done.stderr[-3000:]
    plain = json.loads((tmp_path / "plain" / "metrics.json").read_text())
    _flipped_header(pair["fixed_seg"], tmp_path / "stored_flipped.nii.gz", data_too=True)
    _flipped_header(pair["fixed_seg"], tmp_path / "mirrored.nii.gz", data_too=False)
    dice = {}
    for name in ("stored_flipped", "mirrored"):
        done = _register(
            tmp_path, pair, name, *FAST, fixed_seg=tmp_path / f"{name}.nii.gz", moving_seg=pair["moving_seg"]
        )
        assert done.returncode == 0, done.stderr[-3000:]
        dice[name] = json.loads((tmp_path / name / "metrics.json").read_text())["dice"]
    assert dice["stored_flipped"] == pytest.approx(plain["dice"], abs=1e-6)  # the same map, stored otherwise
    assert dice["mirrored"] < plain["dice"] - 0.1  # its header mirrors it: a different map, measured as such
    shifted = nib.load(pair["fixed_seg"])
    moved = shifted.affine.copy()
    moved[0, 3] += 0.5  # a third of a voxel: not on the image's grid
    nib.save(nib.Nifti1Image(np.asarray(shifted.dataobj), moved), tmp_path / "off_grid.nii.gz")
    for flag in ("fixed_seg", "fixed_mask"):
        files = {flag: tmp_path / "off_grid.nii.gz"}
        if flag == "fixed_seg":
            files["moving_seg"] = pair["moving_seg"]
        done = _register(tmp_path, pair, f"off_{flag}", *FAST, **files)
        assert done.returncode == 2 and "does not lie on the voxel grid" in done.stderr, done.stderr
        assert f"--{flag.replace('_', '-')}" in done.stderr and len(done.stderr.strip().splitlines()) == 1
        done = _register(tmp_path, pair, f"ignored_{flag}", *FAST, "--ignore-header", **files)
        assert done.returncode == 0, done.stderr  # the user says the voxels match: the shapes do


def test_a_soft_mask_weighs_voxels_and_a_slice_across_the_grid_is_one_line(tmp_path, pair):
    fixed = nib.load(pair["fixed"])
    soft = np.clip(np.asarray(fixed.dataobj) / float(np.max(fixed.dataobj)), 0, 1).astype(np.float32)
    nib.save(nib.Nifti1Image(soft, fixed.affine), tmp_path / "soft.nii.gz")
    done = _register(tmp_path, pair, "soft", *FAST, fixed_mask=tmp_path / "soft.nii.gz")
    assert done.returncode == 0, done.stderr[-3000:]
    nib.save(nib.Nifti1Image(soft * 5, fixed.affine), tmp_path / "percent.nii.gz")
    done = _register(tmp_path, pair, "percent", *FAST, fixed_mask=tmp_path / "percent.nii.gz")
    assert done.returncode == 2 and "holds weights between 0 and 1" in done.stderr
    coronal = np.asarray(fixed.dataobj)[:, :1, :]
    for key in ("fixed", "moving"):
        nib.save(nib.Nifti1Image(coronal, fixed.affine), tmp_path / f"{key}_coronal.nii.gz")
    files = {key: tmp_path / f"{key}_coronal.nii.gz" for key in ("fixed", "moving")}
    done = _register(tmp_path, pair, "coronal", *FAST, **files)
    assert done.returncode == 2 and "a 2D slice stored along another axis than the last" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
