"""Shared fixtures: synthetic pairs and NIfTI files written by the tests themselves."""

from __future__ import annotations

import os

import nibabel as nib
import numpy as np
import pytest

from lightning_reg.data.synthetic import oblique_affine, warped_pair

if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest-xdist runs one worker per core: each worker, and the commands it starts, on one thread,
    # so that the workers never oversubscribe the cores (OpenMP threads spinning against each other)
    import torch

    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def nifti_pair(tmp_path_factory):
    """A 3D pair with labels on disk, non-identity affines, anisotropic spacing, a known warp."""
    folder = tmp_path_factory.mktemp("nifti")
    pair = warped_pair((40, 48, 36), magnitude=2.5, seed=3)
    fixed_affine = oblique_affine(origin=(30.0, -20.0, 10.0))
    moving_affine = fixed_affine.copy()
    moving_affine[:3, 3] += [0.5, 0.0, -1.0]
    paths = {}
    for key, affine in (("fixed", fixed_affine), ("moving", moving_affine)):
        paths[key] = folder / f"{key}.nii.gz"
        nib.save(nib.Nifti1Image(pair[key][0, 0].numpy(), affine), paths[key])
        paths[f"{key}_seg"] = folder / f"{key}_seg.nii.gz"
        nib.save(nib.Nifti1Image(pair[f"{key}_seg"][0, 0].numpy().astype(np.int16), affine), paths[f"{key}_seg"])
    return paths


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """A tiny 2D model trained with ``lightning-reg fit`` (one epoch, 32x32): its run folder."""
    from helpers import TINY_2D, lightning_reg

    folder = tmp_path_factory.mktemp("trained")
    done = lightning_reg(["fit", *TINY_2D], folder)
    assert done.returncode == 0, done.stderr[-3000:]
    return next((folder / "runs" / "lightning-reg").iterdir())


@pytest.fixture(scope="session")
def built(tmp_path_factory):
    """A real-brain folder (``python -m lightning_reg.anatomy``) built from tiny stand-in wheels:
    ``(folder, test_pairs.csv, sources)``, sources: the four stand-in wheels."""
    from fake_wheels import write_fake_templates, write_fake_wheels

    from lightning_reg.anatomy.build import build

    folder = tmp_path_factory.mktemp("brains")
    sources = write_fake_wheels(folder / "wheels")
    templates = write_fake_templates(folder / "wheels")
    return folder, build(folder, sources=sources, templates=templates), (*sources, *templates)
