"""The tutorial (``docs/tutorial.md``) runs as written: every ``bash`` block of the page, in order, in a
new folder, at smaller sizes (``benchmarks/tutorial.py``'s ``TINY``), and each step leaves what the
page says it does."""

import importlib.util
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _runner():
    spec = importlib.util.spec_from_file_location("tutorial_runner", ROOT / "benchmarks" / "tutorial.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_tutorial_runs_as_written_and_registers(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_MODE", "offline")
    runner = _runner()
    done = runner.run_blocks(tmp_path, runner.TINY)
    assert len(done) == len(runner.blocks()) == 6
    assert (tmp_path / "my_scans" / "OASIS_dataset.json").is_file()
    (checkpoint,) = tmp_path.glob("runs/lightning-reg/*/checkpoints/last.ckpt")
    summary = runner.figures(tmp_path, done)
    assert 0.0 < summary["fit, epoch 1: validation"]["dice"] <= 1.0
    assert 0.0 < summary["test, as trained (greedy)"]["dice"] <= 1.0
    assert 0.0 < summary["test, svf"]["dice"] <= 1.0
    # the new pair: Dice improves on the headers' alignment
    assert summary["new pair, registered"]["dice"] > summary["new pair, before registration"]["dice"] + 0.02
    # the last test ran with the transform the page switches to, from the trained weights
    svf_run = runner.WROTE.findall(done[-1]["stderr"])[-1]
    config = yaml.safe_load((tmp_path / svf_run / "config.yaml").read_text())
    assert config["model"]["eval_solver"]["transform"] == "svf"
    assert (tmp_path / config["ckpt_path"]).resolve() == checkpoint.resolve()
    assert config["model"]["eval_solver"]["iterations"] == [8, 4, 2]  # the config file's changes, then the flags'
