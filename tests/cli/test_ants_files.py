"""ANTs transform files, checked with the real clients: ANTsPy applies our 1Warp + 0GenericAffine
and reproduces warped.nii.gz (3D, oblique anisotropic headers; 2D), the inverse files map warped
back onto moving, SimpleITK and nitransforms read them, ANTs' own affine files read back to the
same map, and antsRegistration's outputs applied by lightning-reg apply give ANTs' own images."""

from __future__ import annotations

import json
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest
import torch

from lightning_reg.data.synthetic import oblique_affine, warped_pair
from lightning_reg.errors import InputError
from lightning_reg.files.ants import load_ants_affine, save_ants_affine

ants = pytest.importorskip("ants", reason="antspyx (the dev extra) is not installed")


def _register(folder, shape, fixed_affine, moving_affine, *options):
    pair = warped_pair(shape, magnitude=2.5, seed=4)
    for key, affine in (("fixed", fixed_affine), ("moving", moving_affine)):
        nib.save(nib.Nifti1Image(pair[key][0, 0].numpy(), affine), folder / f"{key}.nii.gz")
    out = folder / "out"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightning_reg.cli",
            "register",
            "--fixed",
            folder / "fixed.nii.gz",
            "--moving",
            folder / "moving.nii.gz",
            "--scales",
            "2",
            "1",
            "--iterations",
            "60",
            "30",
            "--quiet",
            "--out",
            out,
            *options,
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    return out


def _correlation(first: np.ndarray, second: np.ndarray, inside: np.ndarray) -> float:
    return float(np.corrcoef(first[inside], second[inside])[0, 1])


def _check_with_ants(folder, out):
    fixed, moving = (ants.image_read(str(folder / f"{key}.nii.gz")) for key in ("fixed", "moving"))
    ours = nib.load(out / "warped.nii.gz").get_fdata()
    forward = [str(out / "1Warp.nii.gz"), str(out / "0GenericAffine.mat")]
    by_ants = ants.apply_transforms(fixed, moving, forward, interpolator="linear").numpy()
    assert by_ants.shape == ours.shape
    assert _correlation(by_ants, ours, ours != 0) >= 0.99
    # the inverse: warped mapped back onto the moving grid is the moving image again
    warped = ants.image_read(str(out / "warped.nii.gz"))
    inverse = [str(out / "0GenericAffine.mat"), str(out / "1InverseWarp.nii.gz")]
    back = ants.apply_transforms(moving, warped, inverse, whichtoinvert=[True, False], interpolator="linear").numpy()
    headers_only = ants.apply_transforms(moving, warped, [], interpolator="linear").numpy()
    inside = (back != 0) & (headers_only != 0)
    assert _correlation(back, moving.numpy(), inside) >= 0.98
    assert _correlation(back, moving.numpy(), inside) > _correlation(headers_only, moving.numpy(), inside) + 0.02


def test_ants_applies_our_files_in_3d_with_oblique_anisotropic_headers(tmp_path):
    fixed_affine = oblique_affine(spacing=(1.2, 1.0, 1.5), angle=0.15, origin=(30.0, -20.0, 10.0))
    moving_affine = oblique_affine(spacing=(1.1, 1.1, 1.6), angle=-0.1, origin=(28.0, -22.0, 13.0))
    out = _register(tmp_path, (40, 44, 36), fixed_affine, moving_affine, "--init", "affine")
    _check_with_ants(tmp_path, out)


@pytest.mark.parametrize("transform", ["greedy", "syn"])
def test_ants_applies_our_files_in_2d(tmp_path, transform):
    fixed_affine, moving_affine = np.diag([1.0, 1.2, 1.0, 1.0]), np.diag([1.1, 1.0, 1.0, 1.0])
    fixed_affine[:2, 3], moving_affine[:2, 3] = (-20.0, -25.0), (-22.0, -24.0)
    out = _register(tmp_path, (48, 52), fixed_affine, moving_affine, "--transform", transform)
    _check_with_ants(tmp_path, out)
    metrics = json.loads((out / "metrics.json").read_text())
    if transform == "syn":  # the inverse from the two halves of the same solve
        assert metrics["inverse"]["method"] == "symmetric" and metrics["inverse_consistency_mm"]["mean"] < 0.1


def test_simpleitk_reads_our_files_as_the_same_map(tmp_path):
    sitk = pytest.importorskip("SimpleITK")
    fixed_affine = oblique_affine(origin=(30.0, -20.0, 10.0))
    out = _register(tmp_path, (40, 44, 36), fixed_affine, fixed_affine.copy(), "--init", "affine")
    affine = sitk.ReadTransform(str(out / "0GenericAffine.mat"))
    field = sitk.ReadImage(str(out / "1Warp.nii.gz"), sitk.sitkVectorFloat64)
    composite = sitk.CompositeTransform([affine, sitk.DisplacementFieldTransform(field)])  # the field first
    total = nib.load(out / "warp.nii.gz").get_fdata()[..., 0, :]  # the single composed field, LPS mm
    voxel = np.array([20, 22, 18])
    point_ras = fixed_affine[:3, :3] @ voxel + fixed_affine[:3, 3]
    point_lps = point_ras * [-1, -1, 1]
    mapped = np.array(composite.TransformPoint(tuple(point_lps)))
    assert np.abs(mapped - (point_lps + total[tuple(voxel)])).max() < 0.05  # mm


def test_an_affine_ants_wrote_reads_back_to_the_same_map(tmp_path):
    transform = ants.create_ants_transform(transform_type="AffineTransform", dimension=3, precision="double")
    transform.set_parameters(np.array([1.05, 0.1, 0.0, -0.05, 0.95, 0.02, 0.0, 0.03, 1.1, 3.0, -4.0, 5.0]))
    transform.set_fixed_parameters(np.array([10.0, -5.0, 2.0]))
    ants.write_transform(transform, str(tmp_path / "ants.mat"))
    matrix = load_ants_affine(tmp_path / "ants.mat")
    point_lps = np.array([12.0, 7.0, -3.0])
    expected = np.array(transform.apply_to_point(tuple(point_lps))) * [-1, -1, 1]
    assert np.allclose(
        (matrix @ torch.tensor([*(point_lps * [-1, -1, 1]), 1.0], dtype=torch.float64))[:3], expected, atol=1e-6
    )
    save_ants_affine(matrix, tmp_path / "ours.mat")  # and ours reads in ANTs as the same map
    again = ants.read_transform(str(tmp_path / "ours.mat"))
    assert np.allclose(again.apply_to_point(tuple(point_lps)), transform.apply_to_point(tuple(point_lps)), atol=1e-6)


def test_a_file_that_is_not_an_affine_is_one_clear_error(tmp_path):
    (tmp_path / "bad.mat").write_bytes(b"not a matlab file")
    with pytest.raises(InputError, match="cannot read .* as an ITK/ANTs affine"):
        load_ants_affine(tmp_path / "bad.mat")
    with pytest.raises(InputError, match="file not found"):
        load_ants_affine(tmp_path / "missing.mat")


def test_antsregistration_outputs_applied_by_lightning_reg_apply_give_ants_own_images(tmp_path):
    fixed_affine = oblique_affine(origin=(30.0, -20.0, 10.0))
    pair = warped_pair((40, 44, 36), magnitude=2.5, seed=6)
    for key in ("fixed", "moving"):
        nib.save(nib.Nifti1Image(pair[key][0, 0].numpy(), fixed_affine), tmp_path / f"{key}.nii.gz")
    fixed, moving = (ants.image_read(str(tmp_path / f"{key}.nii.gz")) for key in ("fixed", "moving"))
    done = ants.registration(fixed, moving, "SyN", outprefix=str(tmp_path / "reg_"), reg_iterations=(20, 10, 0))
    for direction, expected, reference, image in (
        ("forward", done["warpedmovout"], "fixed", "moving"),
        ("inverse", done["warpedfixout"], "moving", "fixed"),
    ):
        out = tmp_path / f"{direction}.nii.gz"
        command = [
            sys.executable,
            "-m",
            "lightning_reg.cli",
            "apply",
            "--reference",
            tmp_path / f"{reference}.nii.gz",
            "--input",
            tmp_path / f"{image}.nii.gz",
            "--transforms",
            tmp_path / "reg_",
            "--out",
            out,
        ]
        ran = subprocess.run(
            [*map(str, command), *(["--inverse"] if direction == "inverse" else [])], capture_output=True, text=True
        )
        assert ran.returncode == 0, ran.stderr
        ours, theirs = nib.load(out).get_fdata(), expected.numpy()
        assert _correlation(ours, theirs, theirs != 0) >= 0.999, direction


def test_nitransforms_reads_our_files_as_the_same_map(tmp_path):
    nitransforms = pytest.importorskip("nitransforms", reason="nitransforms (the dev extra) is not installed")
    from nitransforms.io.itk import ITKDisplacementsField

    fixed_affine = oblique_affine(origin=(30.0, -20.0, 10.0))
    out = _register(tmp_path, (40, 44, 36), fixed_affine, fixed_affine.copy(), "--init", "affine")
    affine = nitransforms.linear.load(str(out / "0GenericAffine.mat"), fmt="itk")
    assert np.allclose(affine.matrix, load_ants_affine(out / "0GenericAffine.mat").numpy(), atol=1e-9)
    field = nitransforms.nonlinear.DenseFieldTransform(
        ITKDisplacementsField.from_filename(str(out / "1Warp.nii.gz")), reference=nib.load(tmp_path / "fixed.nii.gz")
    )
    warp_ras = nib.load(out / "1Warp.nii.gz").get_fdata()[:, :, :, 0, :] * [-1, -1, 1]
    voxel = np.array([20, 22, 18])
    point = fixed_affine[:3, :3] @ voxel + fixed_affine[:3, 3]
    assert np.allclose(field.map(point[None])[0], point + warp_ras[tuple(voxel)], atol=1e-4)  # mm
