"""The models shipped in the package: found by name, from Python and from `lightning-reg register`,
and better than no registration on brain-like pairs they never saw (the synthetic generator's
ellipsoids of random labels with a known smooth warp, at the models' 2 mm)."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch
from helpers import lightning_reg, mean_dice

from lightning_reg.cli import main
from lightning_reg.data.brains.anisotropy import thicken
from lightning_reg.data.synthetic import warped_pair
from lightning_reg.models import BUNDLED, bundled_path, pretrained, resolve_checkpoint
from lightning_reg.training.module import RegistrationModule


@pytest.fixture(scope="module")
def brain_pair(tmp_path_factory):
    """A brain-like 3D pair with a known warp (RMS 2 voxels) as NIfTI files, 2 mm voxels."""
    pair = warped_pair((48, 56, 48), magnitude=2.0, num_labels=8, seed=5)
    out = tmp_path_factory.mktemp("brain_pair")
    paths = {}
    for key in ("fixed", "moving", "fixed_seg", "moving_seg"):
        array = pair[key][0, 0].numpy()
        paths[key] = out / f"{key}.nii.gz"
        nib.save(
            nib.Nifti1Image(array.astype(np.int16) if "seg" in key else array, np.diag([2.0, 2.0, 2.0, 1])), paths[key]
        )
    return paths


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_each_bundled_model_loads_by_name(name):
    assert bundled_path(name).is_file() and resolve_checkpoint(name) == bundled_path(name)
    model = pretrained(name)
    assert isinstance(model, RegistrationModule) and model.network.dims == int(name[-2]) and not model.training


def test_the_old_pretrained_method_still_loads_and_says_where_it_moved():
    with pytest.warns(DeprecationWarning, match=r"lightning_reg.models.pretrained in 0.3.*removed in 0.5"):
        model = RegistrationModule.pretrained("brain2d")
    assert model.network.dims == 2 and not model.training


def test_brain2d_registers_an_unseen_brain_slice_better_than_no_registration():
    pair = warped_pair((96, 112), magnitude=2.0, num_labels=8, seed=5)
    model = pretrained("brain2d")
    affine = torch.diag(torch.tensor([2.0, 2.0, 1.0]))[None]
    batch = {
        **{key: pair[key] for key in ("fixed", "moving", "fixed_seg", "moving_seg")},
        "fixed_affine": affine,
        "moving_affine": affine,
    }
    with torch.no_grad():
        result = model.register(batch)[-1]
    before = mean_dice(batch["fixed_seg"], batch["moving_seg"])
    after = mean_dice(batch["fixed_seg"], result.warp_labels(batch["moving_seg"]))
    assert after > before + 0.05, (before, after)


def test_register_checkpoint_brain3d_from_the_command_line(tmp_path, brain_pair):
    done = lightning_reg(
        [
            "register",
            "--checkpoint",
            "brain3d",
            "--fixed",
            brain_pair["fixed"],
            "--moving",
            brain_pair["moving"],
            "--fixed-seg",
            brain_pair["fixed_seg"],
            "--moving-seg",
            brain_pair["moving_seg"],
            "--out",
            tmp_path / "out",
            "--quiet",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["checkpoint"] == "brain3d"
    before = mean_dice(
        torch.as_tensor(np.asarray(nib.load(brain_pair["fixed_seg"]).dataobj))[None, None],
        torch.as_tensor(np.asarray(nib.load(brain_pair["moving_seg"]).dataobj))[None, None],
    )
    assert report["dice"] > before + 0.05, (before, report["dice"])


def test_an_unknown_model_name_lists_the_bundled_ones(tmp_path, brain_pair, capsys):
    code = main(
        [
            "register",
            "--checkpoint",
            "brain4d",
            "--fixed",
            str(brain_pair["fixed"]),
            "--moving",
            str(brain_pair["moving"]),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    error = capsys.readouterr().err
    assert code == 2 and "neither a checkpoint file nor a bundled model (brain2d, brain3d)" in error
    assert len(error.strip().splitlines()) == 1


def register_brain2d(paths: dict, out, *extra: str) -> int:
    """``lightning-reg register --checkpoint brain2d`` on ``paths["fixed"]``, ``paths["moving"]`` in this
    process: its exit code."""
    images = ["--fixed", str(paths["fixed"]), "--moving", str(paths["moving"])]
    return main(["register", "--checkpoint", "brain2d", *images, "--out", str(out), *extra])


def test_thick_slices_given_to_a_model_get_a_warning(tmp_path, capsys):
    pair = warped_pair((96, 112), magnitude=2.0, num_labels=8, seed=5)
    affine = torch.diag(torch.tensor([2.0, 2.0, 1.0]))
    moving, _, thick_affine = thicken(pair["moving"][0], pair["moving_seg"][0], affine, axis=1, factor=3)
    paths = {}
    for name, array, grid in (("fixed", pair["fixed"][0, 0], affine), ("moving", moving[0], thick_affine)):
        full = np.eye(4)
        full[np.ix_([0, 1, 3], [0, 1, 3])] = grid.numpy()
        paths[name] = tmp_path / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(array.numpy()[..., None], full), paths[name])
    code = register_brain2d(paths, tmp_path / "out", "--iterations", "5", "--quiet")
    error = capsys.readouterr().err
    assert code == 0 and "moving.nii.gz has voxels of 2 x 6 mm" in error and "resample it to isotropic" in error
    assert "fixed.nii.gz has voxels" not in error


def test_a_similarity_given_to_an_added_features_model_is_the_images(tmp_path):
    pair = warped_pair((96, 112), magnitude=2.0, num_labels=8, seed=5)
    paths = {}
    for name in ("fixed", "moving"):
        paths[name] = tmp_path / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(pair[name][0, 0].numpy()[..., None], np.diag([2.0, 2.0, 2.0, 1.0])), paths[name])
    code = register_brain2d(paths, tmp_path / "out", "--similarity", "mi", "--iterations", "5", "--no-qc")
    assert code == 0
    solver = json.loads((tmp_path / "out" / "metrics.json").read_text())["solver"]
    assert solver["similarity"] == "added" and solver["similarity_options"]["image"] == "mi"
    assert solver["similarity_options"]["features"] == "mse"
