"""`lightning-reg fit` and `test` as a user runs them (subprocess): checkpoint, offline W&B run,
validation panel, config; then the per-pair test table from the checkpoint; and bad arguments."""

import csv
import json
import os
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from helpers import lightning_reg

from lightning_reg.cli import main
from lightning_reg.cli.main import share_cores

ROOT = Path(__file__).resolve().parents[2]
TINY = [
    "--data.train_pairs",
    "2",
    "--data.val_pairs",
    "1",
    "--data.test_pairs",
    "3",
    "--trainer.max_epochs",
    "1",
    "--trainer.enable_progress_bar",
    "false",
    "--model.train_solver.iterations",
    "[5,5,5]",
]


@pytest.mark.parametrize(
    "extra",
    [
        ["--data.shape", "[32,32]"],
        [
            "--config",
            str(ROOT / "configs" / "synthetic3d.yaml"),
            "--trainer",
            str(ROOT / "configs" / "trainer" / "cpu.yaml"),
            "--data.shape",
            "[16,16,16]",
        ],
    ],
    ids=["2d", "3d"],
)
def test_fit_then_test_from_the_checkpoint(tmp_path, extra):
    done = lightning_reg(["fit", *extra, *TINY], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = list((tmp_path / "runs" / "lightning-reg").iterdir())
    assert len(runs) == 1
    run = runs[0]
    checkpoint = run / "checkpoints" / "last.ckpt"
    assert checkpoint.is_file()
    assert (run / "config.yaml").is_file()
    assert list((run / "panels").glob("val_epoch000_*.png"))
    offline = list((tmp_path / "runs" / "wandb").glob(f"offline-run-*-{run.name}"))
    assert offline and list(offline[0].glob("run-*.wandb"))

    done = lightning_reg(["test", "--ckpt_path", str(checkpoint), *extra, *TINY], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    tables = list((tmp_path / "runs" / "lightning-reg").glob("*/test_metrics.csv"))
    assert len(tables) == 1
    with open(tables[0]) as handle:
        rows = list(csv.DictReader(handle))
    assert [row["id"] for row in rows] == ["test-2000000", "test-2000001", "test-2000002"]
    summary = json.loads((tables[0].parent / "metrics.json").read_text())  # the run's final metrics
    assert summary["stage"] == "test"
    assert summary["test/dice"] == pytest.approx(sum(float(row["dice"]) for row in rows) / len(rows), abs=1e-4)
    for row in rows:
        assert 0.0 <= float(row["dice"]) <= 1.0
        assert float(row["hd95"]) >= 0.0 and float(row["folding_percent"]) >= 0.0 and float(row["seconds"]) > 0

    done = lightning_reg(["predict", "--ckpt_path", str(checkpoint), *extra, *TINY], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    folders = sorted((tmp_path / "runs" / "lightning-reg").glob("*/predictions/test-*"))
    assert [folder.name for folder in folders] == ["test-2000000", "test-2000001", "test-2000002"]
    warped = nib.load(folders[0] / "warped.nii.gz")
    labels = np.asarray(nib.load(folders[0] / "warped_seg.nii.gz").dataobj)
    warp = nib.load(folders[0] / "warp.nii.gz")
    shape = warped.shape
    assert len(shape) == len(extra[-1].strip("[]").split(",")) and np.isfinite(warped.get_fdata()).all()
    assert labels.shape == shape and set(np.unique(labels)) <= set(range(13))
    assert warp.shape[: len(shape)] == shape and warp.shape[-1] == len(shape)


def test_test_time_options_win_over_the_checkpoint(tmp_path, monkeypatch, capsys):
    """The network comes from the checkpoint; an evaluation transform given on the command line is used."""
    fit = ["--data.shape", "[32,32]", "--model.network", "lightning_reg.nn.EncoderFeatures", *TINY]
    assert lightning_reg(["fit", *fit], tmp_path).returncode == 0
    checkpoint = next((tmp_path / "runs" / "lightning-reg").glob("*/checkpoints/last.ckpt"))
    done = lightning_reg(
        [
            "test",
            "--ckpt_path",
            str(checkpoint),
            "--data.shape",
            "[32,32]",
            *TINY[:-2],
            "--model.eval_solver.transform",
            "svf",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    config = next((tmp_path / "runs" / "lightning-reg").glob("*/test_metrics.csv")).parent / "config.yaml"
    text = config.read_text()
    assert "lightning_reg.nn.EncoderFeatures" in text and "transform: svf" in text
    (tmp_path / "eval.yaml").write_text("model:\n  eval_solver:\n    transform: affine+greedy\n")
    done = lightning_reg(
        ["test", "--ckpt_path", str(checkpoint), "--config", "eval.yaml", "--data.shape", "[32,32]", *TINY[:-2]],
        tmp_path,
    )  # an evaluation config file wins over the checkpoint too
    assert done.returncode == 0, done.stderr[-3000:]
    newest = max((tmp_path / "runs" / "lightning-reg").glob("*/config.yaml"), key=lambda path: path.stat().st_mtime)
    assert "transform: affine+greedy" in newest.read_text()
    (tmp_path / "notes.ckpt").write_text("not a checkpoint")
    monkeypatch.chdir(tmp_path)  # the failures before training, in this process (the console script's main)
    assert main(["test", "--ckpt_path", "absent.ckpt"]) == 2
    assert "no such checkpoint file" in capsys.readouterr().err
    assert main(["test", "--ckpt_path", "notes.ckpt"]) == 2
    assert "is not a lightning-reg checkpoint, or is damaged" in capsys.readouterr().err
    other = lightning_reg(
        [
            "test",
            "--ckpt_path",
            str(checkpoint),
            "--model.network",
            "lightning_reg.nn.UNet",
            "--data.shape",
            "[32,32]",
            *TINY[:-2],
        ],
        tmp_path,
    )
    assert other.returncode == 2 and "trained with another network" in other.stderr
    assert "Traceback" not in other.stderr


def test_unknown_options_and_commands_get_clear_errors(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # main() is what the console script runs; no process needed to fail
    cases = {
        ("fit", "--model.no_such_option", "1"): "no_such_option",
        # the choices come from SolverOptions' registries, with the option's owner
        ("fit", "--model.train_solver.transform", "demons"): "train_solver: unknown transform 'demons'; choose one of",
        ("fitt",): "unknown command 'fitt'",
    }
    for arguments, message in cases.items():
        assert main(list(arguments)) == 2
        error = capsys.readouterr().err
        assert message in error and "Traceback" not in error and len(error.strip().splitlines()) == 1, error
    assert not (tmp_path / "runs").exists()


def test_the_private_lightning_hooks_we_override_exist():
    """``RegistrationCLI._parse_ckpt_path`` overrides a private hook of LightningCLI (see its comment):
    if an upgrade renames it, the override would silently stop running."""
    from lightning.pytorch.cli import LightningCLI

    assert callable(getattr(LightningCLI, "_parse_ckpt_path", None))


def test_a_config_written_before_the_package_was_regrouped_still_runs(tmp_path):
    """``tests/fixtures/config_0.1.0.yaml`` is the ``config.yaml`` of a 0.1.0 ``fit`` run; it names
    ``lightning_reg.checkpoints.AtomicCheckpointIO``, which now lives in ``training/``;
    ``eval_diffeomorphic_0.2.0.yaml`` is 0.2.0's ``configs/eval/diffeomorphic.yaml`` (``transform:
    affine+greedy``, read since 0.3 as ``linear: affine``, ``transform: greedy``)."""
    old = ROOT / "tests" / "fixtures" / "config_0.1.0.yaml"
    evaluation = ROOT / "tests" / "fixtures" / "eval_diffeomorphic_0.2.0.yaml"
    assert "lightning_reg.checkpoints.AtomicCheckpointIO" in old.read_text()
    assert "transform: affine+greedy" in evaluation.read_text()
    done = lightning_reg(["validate", "--config", old, "--config", evaluation], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "train_solver.learning_rate: write transform_options: {learning_rate: ...}" in done.stderr
    (metrics,) = (tmp_path / "runs" / "lightning-reg").glob("*/metrics.json")
    assert 0.0 <= json.loads(metrics.read_text())["val/dice"] <= 1.0
    from lightning_reg.training import module

    sys.modules.pop("lightning_reg.module", None)  # an earlier import here would not warn again
    with pytest.warns(
        DeprecationWarning,
        match=r"lightning_reg.module moved to lightning_reg.training.module in "
        r"0.2; .* removed in 0.4",
    ):
        from lightning_reg.module import RegistrationModule
    assert RegistrationModule is module.RegistrationModule


def test_the_command_lets_idle_openmp_threads_sleep_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    share_cores()
    assert os.environ["OMP_WAIT_POLICY"] == "PASSIVE"
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    share_cores()
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
