"""`lightning-reg register` on NIfTI files: outputs, ITK-convention warp, and bad input."""

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from lightning_reg.cli import main
from lightning_reg.files.output_folder import MARKER
from lightning_reg.solver.geometry.invert_field import INVERSE_TOLERANCE


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "lightning_reg.cli", *map(str, args)], capture_output=True, text=True)


@pytest.fixture(scope="module")
def registered(nifti_pair, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "out"
    done = _cli(
        "register",
        "--fixed",
        nifti_pair["fixed"],
        "--moving",
        nifti_pair["moving"],
        "--fixed-seg",
        nifti_pair["fixed_seg"],
        "--moving-seg",
        nifti_pair["moving_seg"],
        "--scales",
        2,
        1,
        "--iterations",
        80,
        40,
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr
    return out, done


def test_register_writes_outputs_in_fixed_space(registered, nifti_pair):
    out, done = registered
    assert {p.name for p in out.iterdir()} == {
        "warped.nii.gz",
        "warped_seg.nii.gz",
        "warp.nii.gz",
        "metrics.json",
        "0GenericAffine.mat",
        "1Warp.nii.gz",
        "1InverseWarp.nii.gz",
        "qc.png",
        MARKER,
    }
    assert not list(out.parent.glob(".*partial*"))  # the staging folder became the output
    fixed = nib.load(nifti_pair["fixed"])
    for name in ("warped.nii.gz", "warped_seg.nii.gz"):
        written = nib.load(out / name)
        assert written.shape == fixed.shape
        assert np.allclose(written.affine, fixed.affine, atol=1e-5)
    report = json.loads((out / "metrics.json").read_text())
    before = _dice(nib.load(nifti_pair["fixed_seg"]).get_fdata(), nib.load(nifti_pair["moving_seg"]).get_fdata())
    assert report["dice"] > before + 0.1
    assert set(report) >= {"dice", "dice_per_label", "hd95", "folding_percent", "sdlogj", "seconds"}
    assert report["folding_percent"] == 0.0
    assert report["inverse"]["method"] == "fixed-point"
    assert report["inverse"]["residual_voxels"] < 2.5 * INVERSE_TOLERANCE
    consistency = report["inverse_consistency_mm"]
    assert 0 < consistency["mean"] <= consistency["p95"] and consistency["mean"] < 0.25
    # progress: stderr is a pipe here, so plain lines (one per level, one per step), no bar's carriage returns
    assert "  level 1: " in done.stderr and "lightning-reg register: registered (" in done.stderr
    assert "\r" not in done.stderr and done.stderr.strip().splitlines()[-1] == f"lightning-reg register: wrote {out}"


def _dice(a, b):
    labels = [v for v in np.unique(a) if v != 0]
    return float(np.mean([2 * ((a == v) & (b == v)).sum() / ((a == v).sum() + (b == v).sum()) for v in labels]))


def test_exported_warp_applied_with_simpleitk_reproduces_warped(registered, nifti_pair):
    out, _ = registered
    fixed = sitk.ReadImage(str(nifti_pair["fixed"]), sitk.sitkFloat64)
    moving = sitk.ReadImage(str(nifti_pair["moving"]), sitk.sitkFloat64)
    field = sitk.ReadImage(str(out / "warp.nii.gz"), sitk.sitkVectorFloat64)
    assert field.GetNumberOfComponentsPerPixel() == 3
    resampled = sitk.Resample(moving, fixed, sitk.DisplacementFieldTransform(field), sitk.sitkLinear, 0.0)
    by_itk = sitk.GetArrayFromImage(resampled).transpose(2, 1, 0)
    ours = nib.load(out / "warped.nii.gz").get_fdata()
    difference = np.abs(by_itk - ours)[2:-2, 2:-2, 2:-2]
    assert np.percentile(difference, 99) < 1e-3
    assert difference.mean() < 1e-3
    assert np.abs(ours).max() > 0.5  # the image is not empty


def test_help_and_no_arguments():
    assert main(["--help"]) == 0
    assert main([]) == 2


def _bad(tmp_path, nifti_pair, **changes):
    args = {
        "--fixed": nifti_pair["fixed"],
        "--moving": nifti_pair["moving"],
        "--out": tmp_path / "o",
        "--iterations": "1",
        "--scales": "1",
    }
    args.update(changes)
    flat = []
    for key, value in args.items():
        if value is not None:
            flat += [key, value]
    return _cli("register", *flat)


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, nifti_pair):
    folder = tmp_path_factory.mktemp("bad")
    nib.save(nib.Nifti1Image(np.random.rand(20, 24).astype(np.float32), np.eye(4)), folder / "flat.nii.gz")
    nib.save(nib.Nifti1Image(np.zeros((10, 10, 10), np.int16), np.eye(4)), folder / "small_seg.nii.gz")
    nib.save(nib.Nifti1Image(np.full((10, 10, 10), np.nan, np.float32), np.eye(4)), folder / "nan.nii.gz")
    (folder / "exists").mkdir()
    (folder / "exists" / "mine.txt").write_text("keep me")
    return folder


@pytest.mark.parametrize(
    "change, message",
    [
        ({"--moving": "missing.nii.gz"}, "file not found: /.*/missing.nii.gz"),
        ({"--moving": "BAD/flat.nii.gz"}, "fixed image is 3D but moving image is 2D"),
        (
            {"--fixed-seg": "BAD/small_seg.nii.gz", "--moving-seg": "MOVING_SEG"},
            r"--fixed-seg .* does not lie on the voxel grid .*shape \(10, 10, 10\)",
        ),
        ({"--fixed-seg": "FIXED_SEG"}, "give both --fixed-seg and --moving-seg"),
        ({"--transform": "elastic"}, "invalid choice: 'elastic'"),
        ({"--moving": "BAD/nan.nii.gz"}, "NaN"),
        ({"--out": "BAD/exists"}, "exists; pass --overwrite"),
        ({"--scales": "2"}, None),
        ({"--colour": "red"}, "unrecognized arguments: --colour"),
        ({"--preset": "slow"}, "invalid choice: 'slow'"),
        ({"--feature-channels": "4"}, "--feature-channels reduces a --checkpoint model's features"),
        ({"--preset": "fast", "--checkpoint": "brain3d"}, "--preset fast sets the classical solver's iterations"),
    ],
)
def test_bad_input_gets_one_line_error_and_exit_code_2(tmp_path, nifti_pair, bad_files, change, message):
    resolved = {}
    for key, value in change.items():
        value = str(value).replace("BAD", str(bad_files))
        value = value.replace("MOVING_SEG", str(nifti_pair["moving_seg"]))
        value = value.replace("FIXED_SEG", str(nifti_pair["fixed_seg"]))
        resolved[key] = value
    if "--scales" in change:
        resolved["--iterations"] = "1 1"
        done = _cli(
            "register",
            "--fixed",
            nifti_pair["fixed"],
            "--moving",
            nifti_pair["moving"],
            "--scales",
            "2",
            "--iterations",
            "1",
            "1",
            "--out",
            tmp_path / "o",
        )
        message = r"one iteration count \(>= 0\) per level, or one for all: 1 level\(s\), got iterations \[1, 1\]"
    else:
        done = _bad(tmp_path, nifti_pair, **resolved)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert __import__("re").search(message, lines[0]), lines[0]
    assert (bad_files / "exists" / "mine.txt").read_text() == "keep me"


def test_the_fast_preset_sets_its_iterations_and_explicit_options_override_it(tmp_path, nifti_pair):
    from lightning_reg.solver import FAST

    for extra, expected in (([], list(FAST.iterations)), (["--iterations", "3"], [3])):
        out = tmp_path / f"o{len(extra)}"
        done = _cli(
            "register",
            "--fixed",
            nifti_pair["fixed"],
            "--moving",
            nifti_pair["moving"],
            "--preset",
            "fast",
            "--inverse-warp",
            "skip",
            "--out",
            out,
            *extra,
        )
        assert done.returncode == 0, done.stderr
        report = json.loads((out / "metrics.json").read_text())
        assert report["iterations"] == expected and report["solver"]["iterations"] == expected


def test_two_d_slices_stored_as_x_y_1(tmp_path):
    from lightning_reg.data.synthetic import warped_pair

    pair = warped_pair((64, 56), magnitude=2.0, seed=1)
    affine = np.diag([-1.1, 0.9, 3.0, 1.0])
    affine[:3, 3] = [20.0, -10.0, 5.0]
    for key in ("fixed", "moving"):
        nib.save(nib.Nifti1Image(pair[key][0, 0].numpy()[:, :, None], affine), tmp_path / f"{key}.nii.gz")
    out = tmp_path / "out"
    done = _cli(
        "register",
        "--fixed",
        tmp_path / "fixed.nii.gz",
        "--moving",
        tmp_path / "moving.nii.gz",
        "--scales",
        2,
        1,
        "--iterations",
        50,
        50,
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr
    assert nib.load(out / "warped.nii.gz").shape == (64, 56, 1)  # stored as the user stored it
    fixed = sitk.ReadImage(str(tmp_path / "fixed.nii.gz"), sitk.sitkFloat64)[:, :, 0]
    moving = sitk.ReadImage(str(tmp_path / "moving.nii.gz"), sitk.sitkFloat64)[:, :, 0]
    field = sitk.ReadImage(str(out / "warp.nii.gz"), sitk.sitkVectorFloat64)
    resampled = sitk.Resample(moving, fixed, sitk.DisplacementFieldTransform(field), sitk.sitkLinear, 0.0)
    by_itk = sitk.GetArrayFromImage(resampled).T
    ours = nib.load(out / "warped.nii.gz").get_fdata()[:, :, 0]
    assert np.percentile(np.abs(by_itk - ours)[2:-2, 2:-2], 99) < 1e-3


def test_quickstart_demo_pair_registers(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "lightning_reg.data.synthetic", str(tmp_path / "demo")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    demo = tmp_path / "demo"
    assert nib.load(demo / "fixed.nii.gz").header.get_zooms() == pytest.approx((1.2, 1.0, 1.5))
    out = tmp_path / "out"
    done = _cli(
        "register",
        "--fixed",
        demo / "fixed.nii.gz",
        "--moving",
        demo / "moving.nii.gz",
        "--fixed-seg",
        demo / "fixed_seg.nii.gz",
        "--moving-seg",
        demo / "moving_seg.nii.gz",
        "--scales",
        2,
        1,
        "--iterations",
        40,
        20,
        "--init",
        "rigid",
        "--quiet",
        "--out",
        out,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    before = _dice(nib.load(demo / "fixed_seg.nii.gz").get_fdata(), nib.load(demo / "moving_seg.nii.gz").get_fdata())
    assert report["dice"] > before + 0.1


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="checks the CPU-only message")
def test_cuda_asked_for_without_a_gpu(tmp_path, nifti_pair):
    done = _bad(tmp_path, nifti_pair, **{"--device": "cuda"})
    assert done.returncode == 2
    assert "no CUDA device" in done.stderr and len(done.stderr.strip().splitlines()) == 1
