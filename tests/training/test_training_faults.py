"""Training under faults, as a user meets them (real `lightning-reg` processes): the last checkpoint is
the last epoch, a killed run resumes from `--ckpt_path last` exactly, divergence stops with one line
and finite checkpoints, Ctrl-C saves and closes W&B, runs started together get their own folders,
and predictions are not overwritten without asking (a file damaged mid-training:
``tests/data/test_damaged_files.py``)."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
import torch
import yaml
from helpers import lightning_reg, start_lightning_reg, wandb_exit_code

TINY = [
    "--data.shape",
    "[32,32]",
    "--data.val_pairs",
    "1",
    "--data.test_pairs",
    "2",
    "--trainer.enable_progress_bar",
    "false",
    "--model.train_solver.iterations",
    "[5,5,5]",
]


def _runs(folder: Path) -> list[Path]:
    return sorted((folder / "runs" / "lightning-reg").iterdir())


def _last_line(done) -> str:
    return done.stderr.strip().splitlines()[-1]


def _checkpoint(path: Path) -> dict:
    return torch.load(path, weights_only=True, map_location="cpu")


def test_a_run_killed_mid_epoch_resumes_from_last_with_the_same_steps_and_pairs(tmp_path):
    """``kill -9`` in epoch 2 of 3, then ``--ckpt_path last``: the same final step count and the
    same weights as a run that was never killed (so the same pairs were drawn in the same order),
    and ``last.ckpt`` holds the last epoch, not the best one."""
    fit = ["fit", *TINY, "--data.train_pairs", "6", "--trainer.max_epochs", "3"]
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir(), killed.mkdir()
    done = lightning_reg(fit, whole)
    assert done.returncode == 0, done.stderr[-3000:]
    reference = _checkpoint(_runs(whole)[0] / "checkpoints" / "last.ckpt")
    assert (reference["epoch"], reference["global_step"]) == (2, 18)

    process = start_lightning_reg(fit, killed)
    deadline = time.time() + 300
    while time.time() < deadline and not list(killed.glob("runs/lightning-reg/*/checkpoints/last.ckpt")):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    run = _runs(killed)[0]
    interrupted = _checkpoint(run / "checkpoints" / "last.ckpt")  # whole, though the process was killed
    assert interrupted["epoch"] == 0 and interrupted["global_step"] == 6
    assert not list(run.glob("checkpoints/.partial-*"))

    done = lightning_reg([*fit, "--ckpt_path", "last"], killed)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _runs(killed) == [run]  # resumed in its own run folder
    config = yaml.safe_load((run / "config.yaml").read_text())  # options given win over the checkpoint's
    assert config["model"]["train_solver"]["iterations"] == [5, 5, 5] and config["ckpt_path"].endswith("last.ckpt")
    resumed = _checkpoint(run / "checkpoints" / "last.ckpt")
    assert (resumed["epoch"], resumed["global_step"]) == (2, 18)
    for key, value in reference["state_dict"].items():
        assert torch.allclose(resumed["state_dict"][key], value, atol=1e-6), key


def test_ckpt_path_last_without_any_run_is_one_line(tmp_path, monkeypatch, capsys):
    from lightning_reg.cli import main

    monkeypatch.chdir(tmp_path)
    assert main(["test", "--ckpt_path", "last", *TINY]) == 2
    error = capsys.readouterr().err
    assert error.strip() == (
        "lightning-reg test: error: --ckpt_path last: no run under runs has a "
        "checkpoints/last.ckpt or interrupted.ckpt; give a checkpoint's path"
    )


@pytest.mark.parametrize("lr, cause", [(1e9, "not finite"), (1e17, "not finite")], ids=["nan", "huge"])
def test_divergence_stops_with_one_line_and_keeps_finite_checkpoints(tmp_path, lr, cause):
    """1e9 makes the features NaN within a few steps; 1e17 makes them huge but finite first (which
    crashed the process inside grid_sample's backward before the sampler's coordinates were bounded)."""
    done = lightning_reg(
        ["fit", *TINY, "--data.train_pairs", "4", "--trainer.max_epochs", "3", "--model.lr", str(lr)], tmp_path
    )
    assert done.returncode == 2, done.stderr[-3000:]  # not -11: no crash
    last = _last_line(done)
    assert last.startswith("lightning-reg fit: error: training diverged") and cause in last, last
    assert "--model.lr" in last and "Traceback" not in done.stderr
    for path in _runs(tmp_path)[0].glob("checkpoints/*.ckpt"):
        for value in _checkpoint(path)["state_dict"].values():
            assert torch.isfinite(value.float()).all(), path
        assert path.name in last or "last.ckpt" in last


def test_ctrl_c_saves_a_checkpoint_closes_the_wandb_run_and_says_so_in_one_line(tmp_path):
    """Ctrl-C (exit 130, as a shell reports it) once the first epoch's ``last.ckpt`` exists, so that
    training steps were taken whatever the machine's load (a fixed sleep was not enough on a busy machine)."""
    process = start_lightning_reg(["fit", *TINY, "--data.train_pairs", "6", "--trainer.max_epochs", "50"], tmp_path)
    deadline = time.time() + 300
    while time.time() < deadline and not list(tmp_path.glob("runs/lightning-reg/*/checkpoints/last.ckpt")):
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, error = process.communicate(timeout=120)
    last = error.strip().splitlines()[-1]
    assert process.returncode == 130 and "Traceback" not in error, error[-3000:]
    assert last.startswith("lightning-reg fit: interrupted (Ctrl-C); the state at step ") and "--ckpt_path last" in last
    assert "Detected KeyboardInterrupt" not in error  # Lightning's notice: the one line says it
    run = _runs(tmp_path)[0]
    assert str(Path("runs") / "lightning-reg" / run.name / "checkpoints" / "interrupted.ckpt") in last
    saved = _checkpoint(run / "checkpoints" / "interrupted.ckpt")
    assert 6 <= saved["global_step"] < 300
    offline = next((tmp_path / "runs" / "wandb").glob(f"offline-run-*-{run.name}"))
    assert wandb_exit_code(offline) == 1  # the run was closed (its exit record written), not cut off


def test_runs_started_together_in_one_folder_get_their_own_run_folders(tmp_path):
    fit = ["fit", *TINY, "--data.train_pairs", "1", "--trainer.max_epochs", "1", "--trainer.limit_val_batches", "0"]
    processes = [start_lightning_reg(fit, tmp_path) for _ in range(2)]
    for process in processes:
        _, error = process.communicate(timeout=300)
        assert process.returncode == 0, error[-3000:]
    runs = _runs(tmp_path)
    assert len(runs) == 2 and all((run / "checkpoints" / "last.ckpt").is_file() for run in runs)


def test_predict_refuses_to_overwrite_earlier_predictions(tmp_path, trained_run):
    """Each predict has a run folder of its own, unless the W&B run id is given (as a sweep gives it):
    then the second one finds the first's predictions."""
    predict = ["predict", "--ckpt_path", trained_run / "checkpoints" / "last.ckpt", *TINY]
    done = lightning_reg(predict, tmp_path, WANDB_RUN_ID="samerun")
    assert done.returncode == 0, done.stderr[-3000:]
    folder = tmp_path / "runs" / "lightning-reg" / "samerun" / "predictions"
    before = {path: path.read_bytes() for path in folder.rglob("*.nii.gz")}
    assert len(before) == 6
    done = lightning_reg(predict, tmp_path, WANDB_RUN_ID="samerun")
    assert done.returncode == 2 and "pass --overwrite" in _last_line(done), done.stderr[-3000:]
    assert {path: path.read_bytes() for path in folder.rglob("*.nii.gz")} == before
    done = lightning_reg([*predict, "--overwrite"], tmp_path, WANDB_RUN_ID="samerun")
    assert done.returncode == 0, done.stderr[-3000:]
    assert not [path.name for path in folder.parent.iterdir() if "partial" in path.name]
