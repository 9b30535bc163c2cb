"""DDP through the command line on two CPU processes (gloo): fit, resume, and test on two processes
and on one, with and without batches of pairs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml
from helpers import lightning_reg, written_folder

#: tiny synthetic runs; 5 test pairs split 3 + 2 over two processes
TINY = [
    "--data.shape",
    "[32,32]",
    "--data.train_pairs",
    "4",
    "--data.val_pairs",
    "2",
    "--data.test_pairs",
    "5",
    "--trainer.max_epochs",
    "1",
    "--trainer.enable_progress_bar",
    "false",
    "--model.train_solver.iterations",
    "[5,5,5]",
]
DDP = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
ONE = ["--trainer.devices", "1", "--trainer.strategy", "auto"]
SCORES = ("dice", "hd95", "folding_percent", "sdlogj")


def run_folders(folder: Path) -> set[Path]:
    return set((folder / "runs" / "lightning-reg").glob("*"))


def command(arguments: list, folder: Path, metrics: Path) -> Path:
    """Run ``lightning-reg ARGUMENTS``; the run folder it wrote into (one per command, by process
    0), as its last line names it."""
    done = lightning_reg(arguments, folder, LIGHTNING_REG_METRICS=str(metrics))
    assert done.returncode == 0, done.stderr[-3000:]
    return written_folder(done, folder)


def csv_rows(run: Path) -> list[dict]:
    with open(run / "test_metrics.csv") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> Path:
    """A model trained for one epoch on two processes; progressive levels leave the finer levels' weights
    idle, which plain DDP (no ``find_unused_parameters``) accepts only if every weight still takes
    part in each step's loss."""
    folder = tmp_path_factory.mktemp("ddp")
    command(["fit", *TINY, *DDP, "--model.progressive_epochs", "1"], folder, folder / "fit.json")
    return next(iter(run_folders(folder)))


def test_one_w_and_b_run_and_every_step_of_both_processes(ddp_run):
    assert len(list((ddp_run.parent.parent / "wandb").glob("offline-run-*"))) == 1  # process 0 alone logs
    checkpoint = torch.load(ddp_run / "checkpoints" / "last.ckpt", weights_only=True)
    assert (checkpoint["epoch"], checkpoint["global_step"]) == (0, 2)  # 4 pairs shared out: 2 steps each
    trainer = yaml.safe_load((ddp_run / "config.yaml").read_text())["trainer"]
    assert (trainer["strategy"], str(trainer["devices"])) == ("ddp", "2")


def test_testing_on_two_processes_equals_one_process(ddp_run):
    folder = ddp_run.parent.parent.parent
    base = ["test", "--config", ddp_run / "config.yaml", "--ckpt_path", ddp_run / "checkpoints" / "last.ckpt"]
    results = {}
    for name, options in {"two": [], "one": ONE, "two in batches of 4": ["--data.batch_size", "4"]}.items():
        metrics_file = folder / f"{name}.json"
        run = command([*base, *options], folder, metrics_file)
        assert run != ddp_run and run.parent == ddp_run.parent  # a run of its own, named on the last line
        results[name] = json.loads(metrics_file.read_text()), csv_rows(run)
    one_metrics, one_rows = results["one"]
    ids = [row["id"] for row in one_rows]
    assert ids == [f"test-{2_000_000 + index}" for index in range(5)]
    for name in ("two", "two in batches of 4"):
        metrics, rows = results[name]
        assert [row["id"] for row in rows] == ids, name  # every pair once, in order
        for row, alone in zip(rows, one_rows):
            for key in SCORES:
                assert float(row[key]) == pytest.approx(float(alone[key]), rel=1e-4, abs=1e-4), (name, key)
        for key in SCORES:
            assert metrics[f"test/{key}"] == pytest.approx(one_metrics[f"test/{key}"], rel=1e-5), (name, key)
    for key in SCORES:  # the logged mean is the mean of the pairs (not of the processes' means)
        assert one_metrics[f"test/{key}"] == pytest.approx(sum(float(r[key]) for r in one_rows) / 5, rel=1e-5)


def test_training_resumes_from_a_checkpoint_on_two_processes(ddp_run):
    folder = ddp_run.parent.parent.parent
    resumed = command(
        [
            "fit",
            "--config",
            ddp_run / "config.yaml",
            "--ckpt_path",
            ddp_run / "checkpoints" / "last.ckpt",
            "--trainer.max_epochs",
            "2",
        ],
        folder,
        folder / "resumed.json",
    )
    checkpoint = torch.load(resumed / "checkpoints" / "last.ckpt", weights_only=True)
    assert (checkpoint["epoch"], checkpoint["global_step"]) == (1, 4)
    assert "val/dice" in json.loads((folder / "resumed.json").read_text())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without a GPU")
def test_the_gpu_preset_without_a_gpu_says_how_to_train_on_the_cpu(tmp_path):
    preset = Path(__file__).resolve().parents[2] / "configs" / "trainer" / "ddp.yaml"
    done = lightning_reg(["fit", "--trainer", preset], tmp_path)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "--trainer.accelerator cpu" in done.stderr.strip().splitlines()[-1]
