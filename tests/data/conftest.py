"""Fixtures: tiny dataset trees in each layout (see trees.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from trees import ASEG_CODES, SHAPE, write_scan


@pytest.fixture
def learn2reg_tree(tmp_path) -> Path:
    """``imagesTr``/``labelsTr``/``masksTr`` of 5 subjects and ``OASIS_dataset.json``; validation
    pairs 0004->0005 (and 0003->0004)."""
    root = tmp_path / "OASIS"
    training = []
    for number in range(1, 6):
        name = f"OASIS_{number:04d}_0000.nii.gz"
        write_scan(root / "imagesTr" / name, root / "labelsTr" / name, seed=number)
        write_scan(root / "masksTr" / name, None, seed=number)
        training.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}", "mask": f"./masksTr/{name}"})
    pairs = [
        {"fixed": "./imagesTr/OASIS_0004_0000.nii.gz", "moving": "./imagesTr/OASIS_0005_0000.nii.gz"},
        {"fixed": "./imagesTr/OASIS_0003_0000.nii.gz", "moving": "./imagesTr/OASIS_0004_0000.nii.gz"},
    ]
    description = {
        "name": "OASIS",
        "tensorImageSize": {"0": "3D"},
        "numTraining": 5,
        "training": training,
        "registration_val": pairs,
    }
    (root / "OASIS_dataset.json").write_text(json.dumps(description, indent=1))
    return root


@pytest.fixture
def neurite_tree(tmp_path) -> Path:
    """7 ``OASIS_OAS1_XXXX_MR1`` folders with 3D and 2D (``X x Y x 1``) images and labels, and a
    ``subjects.txt`` that lists them in an order of its own."""
    root = tmp_path / "neurite-oasis"
    names = [f"OASIS_OAS1_{number:04d}_MR1" for number in (7, 1, 2, 3, 4, 5, 6)]
    for seed, name in enumerate(names):
        folder = root / name
        write_scan(folder / "aligned_norm.nii.gz", folder / "aligned_seg35.nii.gz", seed=seed)
        write_scan(
            folder / "slice_norm.nii.gz", folder / "slice_seg24.nii.gz", seed=seed, shape=(SHAPE[0], SHAPE[1], 1)
        )
    (root / "subjects.txt").write_text("\n".join(names) + "\n")
    return root


@pytest.fixture
def bids_tree(tmp_path) -> Path:
    """``sub-01..sub-08`` (sub-02 with two sessions), fMRIPrep-style ``desc-aseg_dseg`` label maps
    with FreeSurfer codes; sub-08 has none."""
    root = tmp_path / "bids"
    seed = 0
    for number in range(1, 9):
        sessions = ["ses-1", "ses-2"] if number == 2 else [None]
        for session in sessions:
            seed += 1
            parts = [f"sub-{number:02d}"] + ([session] if session else [])
            stem = "_".join(parts)
            image = root.joinpath(*parts, "anat", f"{stem}_T1w.nii.gz")
            seg = root.joinpath("derivatives", "fmriprep", *parts, "anat", f"{stem}_desc-aseg_dseg.nii.gz")
            write_scan(image, None if number == 8 else seg, seed=seed, codes=ASEG_CODES)
    return root


@pytest.fixture
def manifest_file(tmp_path) -> Path:
    """``pairs.csv`` with relative paths, label maps and a split column (2 train, 1 val, 1 test)."""
    folder = tmp_path / "mine"
    for number in range(5):
        write_scan(folder / "images" / f"scan{number}.nii.gz", folder / "labels" / f"scan{number}.nii.gz", seed=number)
    rows = ["fixed,moving,fixed_seg,moving_seg,split"]
    for fixed, moving, split in ((0, 1, "train"), (1, 2, "train"), (2, 3, "val"), (3, 4, "test")):
        rows.append(
            f"images/scan{fixed}.nii.gz,images/scan{moving}.nii.gz,labels/scan{fixed}.nii.gz,"
            f"labels/scan{moving}.nii.gz,{split}"
        )
    path = folder / "pairs.csv"
    path.write_text("\n".join(rows) + "\n")
    return path
