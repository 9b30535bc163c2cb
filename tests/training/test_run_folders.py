"""No run replaces another: without a logger every run gets a folder of its own, and ``--ckpt_path
last`` after Ctrl-C in a first epoch resumes that run (from ``interrupted.ckpt``), never an older one."""

from __future__ import annotations

import shutil
import signal

from helpers import TINY_2D, lightning_reg, start_lightning_reg


def test_runs_without_a_logger_never_overwrite_each_other(tmp_path):
    fit = ["fit", *TINY_2D, "--trainer.logger", "false"]
    names = ("config.yaml", "checkpoints/last.ckpt", "metrics.json")
    folders, first = [], {}
    for _ in range(2):
        done = lightning_reg(fit, tmp_path)
        assert done.returncode == 0, done.stderr[-3000:]
        folders.append(tmp_path / done.stderr.strip().splitlines()[-1].split(": wrote ", 1)[1])
        first = first or {name: (folders[0] / name).read_bytes() for name in names}
    assert folders[0] != folders[1] and all(folder.parent == tmp_path / "runs" for folder in folders)
    assert sorted(path.name for path in (tmp_path / "runs").iterdir()) == sorted(folder.name for folder in folders)
    done = lightning_reg(["test", "--ckpt_path", folders[0] / "checkpoints" / "last.ckpt", *TINY_2D[:8]], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert {name: (folders[0] / name).read_bytes() for name in names} == first  # untouched by the others


def test_last_after_ctrl_c_in_a_first_epoch_resumes_that_run(tmp_path, trained_run):
    older = tmp_path / "runs" / "lightning-reg" / "older"  # an older, finished run
    (older / "checkpoints").mkdir(parents=True)
    shutil.copy(trained_run / "checkpoints" / "last.ckpt", older / "checkpoints" / "last.ckpt")
    long = ["fit", *TINY_2D[:-6], "--data.train_pairs", "2000", "--model.train_solver.iterations", "[5,5,5]"]
    process = start_lightning_reg(long, tmp_path)
    for line in process.stderr:  # progress as plain lines (stderr is a pipe): interrupt after 50 steps
        if "epoch 0: step 50/" in line:
            break
    process.send_signal(signal.SIGINT)
    _, error = process.communicate(timeout=120)
    assert process.returncode == 130, error[-3000:]
    last = error.strip().splitlines()[-1]
    assert "no epoch of this run was complete, so --ckpt_path last resumes it from this state" in last, last
    (newer,) = [run for run in (tmp_path / "runs" / "lightning-reg").iterdir() if run != older]
    assert not (newer / "checkpoints" / "last.ckpt").exists()
    resume = ["fit", *TINY_2D[:-6], "--data.train_pairs", "60", "--model.train_solver.iterations", "[5,5,5]"]
    resume += ["--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false"]  # the rest of epoch 0
    done = lightning_reg([*resume, "--ckpt_path", "last"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"--ckpt_path last is runs/lightning-reg/{newer.name}/checkpoints/interrupted.ckpt" in done.stderr
    assert (newer / "checkpoints" / "last.ckpt").is_file()


def test_a_wandb_key_without_network_logs_offline_with_one_warning(tmp_path):
    """A key and no server (a closed local port stands for no network): offline, not a two-minute wait and
    wandb's CommError."""
    environment = {"WANDB_MODE": "", "WANDB_API_KEY": "0" * 40, "WANDB_BASE_URL": "http://127.0.0.1:9"}
    done = lightning_reg(["fit", *TINY_2D], tmp_path, **environment)
    assert done.returncode == 0, done.stderr[-3000:]
    warned = [line for line in done.stderr.splitlines() if "W&B's server does not answer" in line]
    assert len(warned) == 1 and warned[0].startswith("lightning-reg fit: warning:"), done.stderr[-3000:]
    assert list((tmp_path / "runs" / "wandb").glob("offline-run-*"))
