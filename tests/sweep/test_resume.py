"""Ctrl-C during ``lightning-reg sweep`` keeps the finished runs (their logs, ``runs.jsonl``,
``sweep.yaml`` and a summary of them) and ``--resume`` goes on from there to the sweep's end."""

import csv
import json
import os
import signal
import subprocess
import sys
import time

import yaml
from helpers import _as_from_a_terminal, lightning_reg

from lightning_reg.sweep.engine import SweepRun, numbers_only
from lightning_reg.sweep.summary import ranked


def _sweep_file(folder):
    sweep = {
        "name": "three",
        "method": "grid",
        "metric": {"name": "val/dice", "goal": "maximize"},
        "parameters": {"trainer.max_epochs": {"values": [1, 2, 3]}},
        # a run of two seconds that ignores its parameters: what is tested is the sweep's folder
        "command": ["${interpreter}", "-c", "import time; time.sleep(2)", "${args}"],
    }
    (folder / "three.yaml").write_text(yaml.safe_dump(sweep))


def _as_a_terminal_group() -> None:
    _as_from_a_terminal()
    os.setpgrp()  # Ctrl-C reaches the whole foreground group: the sweep and its run


def test_ctrl_c_keeps_the_finished_runs_and_resume_finishes_the_sweep(tmp_path):
    _sweep_file(tmp_path)
    environment = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true")
    sweep = subprocess.Popen(
        [sys.executable, "-m", "lightning_reg.cli", "sweep", "three.yaml", "--out", "summary"],
        cwd=tmp_path,
        env=environment,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_a_terminal_group,
    )
    deadline = time.monotonic() + 240
    while not any(path.read_text().strip() for path in tmp_path.glob(".summary.partial-*/runs.jsonl")):
        assert sweep.poll() is None and time.monotonic() < deadline, sweep.stderr.read()
        time.sleep(0.05)
    os.killpg(sweep.pid, signal.SIGINT)
    assert sweep.wait(timeout=120) == 130
    last = sweep.stderr.read().strip().splitlines()[-1]
    assert "interrupted (Ctrl-C)" in last and "--resume goes on" in last, last
    kept = [json.loads(line) for line in (tmp_path / "summary" / "runs.jsonl").read_text().splitlines()]
    assert len(kept) == 1 and kept[0]["returncode"] == 0
    logs = sorted(path.stem for path in (tmp_path / "summary" / "logs").iterdir())
    assert logs == [kept[0]["run_id"]]  # the run cut short left nothing
    assert yaml.safe_load((tmp_path / "summary" / "sweep.yaml").read_text())["name"] == "three"
    assert (tmp_path / "summary" / "summary.csv").is_file()

    again = lightning_reg(["sweep", "three.yaml", "--out", "summary"], tmp_path)
    assert again.returncode == 2 and "--resume goes on with it" in again.stderr

    done = lightning_reg(["sweep", "three.yaml", "--out", "summary", "--resume"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "summary" / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(int(row["trainer.max_epochs"]) for row in rows) == [1, 2, 3]
    assert kept[0]["run_id"] in {row["run"] for row in rows}
    assert len(list((tmp_path / "summary" / "logs").iterdir())) == 3
    other = tmp_path / "other.yaml"
    other.write_text((tmp_path / "three.yaml").read_text().replace("three", "other"))
    refused = lightning_reg(["sweep", "other.yaml", "--out", "summary", "--resume"], tmp_path)
    assert refused.returncode == 2 and "holds another sweep" in refused.stderr


def test_a_run_whose_metric_is_null_ranks_last_and_informs_no_search():
    written = {"stage": "fit", "val/dice": None, "val/loss": 0.5, "null_values": {"val/dice": "NaN: ..."}}
    assert numbers_only(written) == {"stage": "fit", "val/loss": 0.5}
    runs = [SweepRun("a", {}, 0, numbers_only(written)), SweepRun("b", {}, 0, {"val/dice": 0.7})]
    assert [run.run_id for run in ranked(runs, "val/dice", "maximize")] == ["b", "a"]
