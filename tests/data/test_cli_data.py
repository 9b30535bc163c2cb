"""`lightning-reg fit` and `test` on files in the neurite-oasis layout, and `test --data.shift`."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from helpers import lightning_reg


def test_rows(folder: Path) -> list[dict]:
    tables = sorted((folder / "runs" / "lightning-reg").glob("*/test_metrics.csv"), key=os.path.getmtime)
    with open(tables[-1]) as handle:
        return list(csv.DictReader(handle))


test_rows.__test__ = False


def test_fit_and_test_on_oasis_files_then_test_under_a_shift(tmp_path, neurite_tree):
    data = [
        "--data",
        "lightning_reg.data.OASISDataModule",
        "--data.root",
        str(neurite_tree),
        "--data.dims",
        "2",
        "--data.val_subjects",
        "2",
        "--data.test_subjects",
        "3",
        "--data.train_pairs",
        "3",
        "--data.augmentation",
        "full",
    ]
    tiny = [
        "--trainer.max_epochs",
        "1",
        "--trainer.enable_progress_bar",
        "false",
        "--model.train_solver.iterations",
        "[5,5,5]",
    ]
    done = lightning_reg(["fit", *data, *tiny], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    checkpoint = next((tmp_path / "runs" / "lightning-reg").glob("*/checkpoints/last.ckpt"))

    done = lightning_reg(["test", "--ckpt_path", str(checkpoint), *data, *tiny], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    clean = test_rows(tmp_path)
    assert [row["id"] for row in clean] == ["OAS1_0004_OAS1_0005", "OAS1_0005_OAS1_0006"]

    shift = ["--data.shift", "anisotropy4"]
    done = lightning_reg(["test", "--ckpt_path", str(checkpoint), *data, *tiny, *shift], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    shifted = test_rows(tmp_path)
    assert [row["id"] for row in shifted] == [row["id"] for row in clean]
    assert [row["dice"] for row in shifted] != [row["dice"] for row in clean]

    done = lightning_reg(["test", "--ckpt_path", str(checkpoint), *data, "--data.shift", "blur9"], tmp_path)
    assert done.returncode == 2
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("lightning-reg test: error: unknown shift 'blur9'") and "Traceback" not in done.stderr


ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "config, tree, extra",
    [
        ("oasis3d.yaml", "learn2reg_tree", []),
        ("oasis2d.yaml", "neurite_tree", ["--data.val_subjects", "2", "--data.test_subjects", "2"]),
        (
            "abcd.yaml",
            "bids_tree",
            [
                "--data.image_glob",
                "sub-*/**/anat/*_T1w.nii.gz",
                "--data.derivatives",
                "derivatives/fmriprep",
                "--data.seg_glob",
                "*_desc-aseg_dseg.nii.gz",
                "--data.size",
                "[24,24,24]",
                "--data.val_subjects",
                "2",
                "--data.test_subjects",
                "2",
            ],
        ),
    ],
)
def test_shipped_configs_validate_on_their_layouts(tmp_path, request, config, tree, extra):
    root = request.getfixturevalue(tree)
    done = lightning_reg(
        [
            "validate",
            "--config",
            str(ROOT / "configs" / config),
            "--data.root",
            str(root),
            "--data.num_workers",
            "0",
            "--data.max_val_pairs",
            "1",
            "--trainer.enable_progress_bar",
            "false",
            "--model.eval_solver.iterations",
            "[3,3,3]",
            *extra,
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "val/dice" in done.stdout
