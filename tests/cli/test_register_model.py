"""`lightning-reg register` with a trained model (--checkpoint) and with label prompts: outputs,
test-time options reported, the prompted structure's Dice, and clear errors."""

import csv
import json

import nibabel as nib
import numpy as np
import pytest
from helpers import lightning_reg

from lightning_reg.cli import main
from lightning_reg.cli.register.load import sha256
from lightning_reg.data import SyntheticDataModule


@pytest.fixture(scope="module")
def slice_pair(tmp_path_factory):
    """A held-out synthetic 2D pair as NIfTI slices (X x Y x 1, 1.2 mm) with label maps."""
    folder = tmp_path_factory.mktemp("slices")
    data = SyntheticDataModule(shape=(32, 32), test_pairs=1)
    data.setup("test")
    batch = next(iter(data.test_dataloader()))
    paths = {}
    for key in ("fixed", "moving", "fixed_seg", "moving_seg"):
        array = batch[key][0, 0].numpy()[..., None]
        paths[key] = folder / f"{key}.nii.gz"
        nib.save(
            nib.Nifti1Image(array.astype(np.int16) if "seg" in key else array, np.diag([1.2, 1.2, 1.2, 1])), paths[key]
        )
    return paths


def _arguments(folder, pair, *extra) -> list[str]:
    return [
        "register",
        "--fixed",
        pair["fixed"],
        "--moving",
        pair["moving"],
        "--fixed-seg",
        pair["fixed_seg"],
        "--moving-seg",
        pair["moving_seg"],
        "--out",
        folder / "out",
        "--overwrite",
        "--quiet",
        *extra,
    ]


def _register(folder, pair, *extra):
    """As a user runs it: a new process."""
    return lightning_reg(_arguments(folder, pair, *extra), folder)


def _in_process(capsys, arguments) -> tuple[int, str]:
    """``main`` here (fast): exit code and what it wrote to stderr."""
    capsys.readouterr()
    code = main([str(argument) for argument in arguments])
    return code, capsys.readouterr().err


def test_register_with_a_checkpoint_uses_the_model_and_takes_test_time_options(
    tmp_path, trained_run, slice_pair, capsys
):
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    done = _register(tmp_path, slice_pair, "--checkpoint", checkpoint)
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["checkpoint"] == str(checkpoint)
    assert report["inputs"]["checkpoint"]["sha256"] == sha256(checkpoint)  # how it was made
    assert {"features", "registration"} <= set(report["seconds_per_phase"])
    assert report["solver"]["network"] and report["solver"]["backward"]["mode"] == "jfb"
    assert (report["transform"], report["similarity"], report["iterations"]) == (
        "freeform",
        "added",  # the default network's similarity: the image and its learned channels
        [5, 5, 5],
    )
    warped = nib.load(tmp_path / "out" / "warped.nii.gz")
    assert warped.shape == (32, 32, 1) and np.allclose(warped.affine, np.diag([1.2, 1.2, 1.2, 1]))
    switched = _register(
        tmp_path,
        slice_pair,
        "--checkpoint",
        checkpoint,
        "--init",
        "affine",
        "--transform",
        "svf",
        "--scales",
        8,
        4,
        2,
        1,
        "--iterations",
        10,
        10,
        10,
        10,
    )
    assert switched.returncode == 0, switched.stderr[-2000:]
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert (report["init"], report["transform"], report["scales"]) == ("affine", "svf", [8, 4, 2, 1])
    assert report["folding_percent"] == 0.0
    # principal components would mix AddedFeatures' image, learned and gate channels (brain3d, a UNet, uses them)
    code, error = _in_process(
        capsys, _arguments(tmp_path, slice_pair, "--checkpoint", checkpoint, "--feature-channels", 3)
    )
    assert code == 2 and "feature_channels mixes AddedFeatures' image" in error


@pytest.mark.parametrize("with_model", [False, True], ids=["classical", "checkpoint"])
def test_a_prompt_raises_the_prompted_structure_s_dice(tmp_path, trained_run, slice_pair, with_model, capsys):
    model = (
        ["--checkpoint", trained_run / "checkpoints" / "last.ckpt"]
        if with_model
        else ["--scales", 2, 1, "--iterations", 50, 20]
    )
    dice = {}
    for name, prompt in (("blind", []), ("prompted", ["--prompt-labels", 2, "--prompt-weight", 1.0])):
        code, error = _in_process(capsys, _arguments(tmp_path, slice_pair, *model, *prompt))
        assert code == 0, error[-2000:]
        report = json.loads((tmp_path / "out" / "metrics.json").read_text())
        dice[name] = report["dice_per_label"]["2"]
    assert report["prompt_labels"] == [2]
    assert dice["prompted"] > dice["blind"] + 0.05, dice


def test_register_errors_name_the_problem(tmp_path, trained_run, slice_pair, nifti_pair, capsys):
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    cases = {
        "the model registers 2D images": [
            "register",
            "--fixed",
            nifti_pair["fixed"],
            "--moving",
            nifti_pair["moving"],
            "--checkpoint",
            checkpoint,
            "--out",
            tmp_path / "o",
        ],
        "is not a lightning-reg checkpoint": _arguments(tmp_path, slice_pair, "--checkpoint", slice_pair["fixed"]),
        "checkpoint not found": _arguments(tmp_path, slice_pair, "--checkpoint", tmp_path / "absent.ckpt"),
        "--prompt-labels needs the label maps": [
            "register",
            "--fixed",
            slice_pair["fixed"],
            "--moving",
            slice_pair["moving"],
            "--prompt-labels",
            2,
            "--out",
            tmp_path / "o",
        ],
        "[17] do not occur in the fixed label map": _arguments(tmp_path, slice_pair, "--prompt-labels", 17),
        "give one iteration count (>= 0) per level, or one for all: 3 level(s)": _arguments(
            tmp_path, slice_pair, "--checkpoint", checkpoint, "--iterations", 3, 3
        ),
        "linear 'affine' is a stage before a deformable transform; 'rigid' is linear": _arguments(
            tmp_path, slice_pair, "--checkpoint", checkpoint, "--init", "affine", "--transform", "rigid"
        ),
        "--prompt-weight must be >= 0": _arguments(tmp_path, slice_pair, "--prompt-labels", 2, "--prompt-weight", -1),
    }
    for message, arguments in cases.items():
        code, error = _in_process(capsys, arguments)
        assert code == 2 and message in error and "Traceback" not in error, (message, error)
        assert len(error.strip().splitlines()) == 1, error


def test_register_and_test_give_the_same_dice_for_the_same_pair(tmp_path, trained_run, slice_pair, capsys):
    """One metrics path: the pair through `register --checkpoint` and through `test` on a one-pair
    CSV (same model, same settings, the one default label warping) scores the same."""
    checkpoint = trained_run / "checkpoints" / "last.ckpt"
    code, error = _in_process(capsys, _arguments(tmp_path, slice_pair, "--checkpoint", checkpoint))
    assert code == 0, error
    report = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert report["label_mode"] == "linear"
    manifest = tmp_path / "pairs.csv"
    manifest.write_text(
        "fixed,moving,fixed_seg,moving_seg\n"
        + ",".join(str(slice_pair[key]) for key in ("fixed", "moving", "fixed_seg", "moving_seg"))
        + "\n"
    )
    tested = lightning_reg(
        [
            "test",
            "--ckpt_path",
            checkpoint,
            "--data",
            "PairsDataModule",
            "--data.manifest",
            manifest,
            "--data.dims",
            "2",
            "--trainer.enable_progress_bar",
            "false",
        ],
        tmp_path,
    )
    assert tested.returncode == 0, tested.stderr[-3000:]
    (table,) = (tmp_path / "runs" / "lightning-reg").glob("*/test_metrics.csv")
    (row,) = list(csv.DictReader(table.open()))
    assert float(row["dice"]) == pytest.approx(report["dice"], abs=1e-6)
    assert float(row["hd95"]) == pytest.approx(report["hd95"], abs=1e-6)
    assert {
        key[len("dice_") :]: float(value) for key, value in row.items() if key.startswith("dice_")
    } == pytest.approx(report["dice_per_label"], abs=1e-6)
