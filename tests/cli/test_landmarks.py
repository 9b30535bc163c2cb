"""Target registration error from landmark files: a known world translation is recovered (TRE
before = the translation, after near 0); landmarks map like the grid does; bad files are one line."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import torch
from helpers import lightning_reg

from lightning_reg.data.synthetic import oblique_affine, warped_pair
from lightning_reg.solver import register

SHIFT = np.array([4.0, -3.0, 2.0])  # mm: where the moving image's header puts the same anatomy


def _write_landmarks(path, points):
    lines = ["id,x,y,z"] + [f"{n},{x:.4f},{y:.4f},{z:.4f}" for n, (x, y, z) in enumerate(points)]
    path.write_text("\n".join(lines) + "\n")


def _pair(folder):
    image = warped_pair((40, 44, 36), magnitude=0.0, seed=8)["fixed"][0, 0].numpy()
    fixed_affine = oblique_affine(origin=(30.0, -20.0, 10.0))
    moving_affine = fixed_affine.copy()
    moving_affine[:3, 3] += SHIFT
    for key, affine in (("fixed", fixed_affine), ("moving", moving_affine)):
        nib.save(nib.Nifti1Image(image, affine), folder / f"{key}.nii.gz")
    voxels = np.random.default_rng(0).uniform([8, 8, 8], [32, 36, 28], size=(12, 3))
    points = voxels @ fixed_affine[:3, :3].T + fixed_affine[:3, 3]
    _write_landmarks(folder / "fixed.csv", points)
    _write_landmarks(folder / "moving.csv", points + SHIFT)


def test_a_known_translation_is_recovered_in_the_tre(tmp_path):
    _pair(tmp_path)
    done = lightning_reg(
        [
            "register",
            "--fixed",
            "fixed.nii.gz",
            "--moving",
            "moving.nii.gz",
            "--transform",
            "rigid",
            "--scales",
            "2",
            "1",
            "--iterations",
            "100",
            "50",
            "--fixed-landmarks",
            "fixed.csv",
            "--moving-landmarks",
            "moving.csv",
            "--quiet",
            "--out",
            "out",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    tre = json.loads((tmp_path / "out" / "metrics.json").read_text())["tre_mm"]
    assert tre["before"]["count"] == 12 and abs(tre["before"]["mean"] - np.linalg.norm(SHIFT)) < 1e-6
    assert tre["after"]["mean"] < 0.1 and tre["after"]["max"] < 0.2


def test_landmarks_at_voxel_centres_map_as_the_grid_does():
    pair = warped_pair((24, 28, 20), magnitude=2.0, seed=2)
    affine = torch.as_tensor(oblique_affine(), dtype=torch.float64)
    result = register(
        pair["fixed"],
        pair["moving"],
        transform="greedy",
        iterations=[20, 10],
        scales=[2, 1],
        fixed_affine=affine[None],
        moving_affine=affine[None],
    )
    voxels = torch.tensor([[3, 5, 7], [12, 14, 10], [20, 2, 15]])
    points = (affine[:3, :3] @ voxels.double().T).T + affine[:3, 3]
    mapped = result.map_points_mm(points[None])[0]
    on_grid = result.moving_points_mm()[0][:, voxels[:, 0], voxels[:, 1], voxels[:, 2]].T
    assert torch.allclose(mapped.double(), on_grid.double(), atol=1e-3)


def test_bad_landmark_files_are_one_line(tmp_path):
    _pair(tmp_path)
    (tmp_path / "short.csv").write_text("id,x,y,z\n0,1,2,3\n")
    (tmp_path / "nocolumn.csv").write_text("id,x,y\n0,1,2\n")
    (tmp_path / "text.csv").write_text("x,y,z\n1,two,3\n")
    cases = {
        "must list corresponding landmarks": ["--fixed-landmarks", "fixed.csv", "--moving-landmarks", "short.csv"],
        "missing z": ["--fixed-landmarks", "nocolumn.csv", "--moving-landmarks", "moving.csv"],
        "must be numbers": ["--fixed-landmarks", "text.csv", "--moving-landmarks", "moving.csv"],
        "or neither": ["--fixed-landmarks", "fixed.csv"],
    }
    for expected, options in cases.items():
        done = lightning_reg(
            ["register", "--fixed", "fixed.nii.gz", "--moving", "moving.nii.gz", *options, "--quiet", "--out", "out"],
            tmp_path,
        )
        assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert not (tmp_path / "out").exists()
