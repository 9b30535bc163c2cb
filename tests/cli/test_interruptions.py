"""Nothing of the user's lost, even in a race, a kill or a demo folder; every interruption one line;
every result says how it was made (issue 30: one test per row of its table, on real processes where
a race, a signal or a kill is the point)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nib
import pytest
import torch
from helpers import lightning_reg, start_lightning_reg

from lightning_reg.cli.register.load import sha256
from lightning_reg.files.output_folder import MARKER

FAST = ["--scales", "2", "1", "--iterations", "4", "2", "--quiet"]
#: a registration that would take minutes: a run to interrupt, or one whose refusal must come first
ENDLESS = ["--iterations", "100000", "--tolerance", "0", "--quiet"]


def _arguments(pair: dict[str, Path], out: Path, *extra) -> list[str]:
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
        out,
        *extra,
    ]


def _one_line(code: int, error: str, expected_code: int, *expected: str) -> None:
    assert code == expected_code, error
    assert len(error.strip().splitlines()) == 1 and "Traceback" not in error, error
    for text in expected:
        assert text in error, error


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def _wait_for(pattern: str, folder: Path, process: subprocess.Popen, seconds: float = 120) -> list[Path]:
    deadline = time.time() + seconds
    while time.time() < deadline and process.poll() is None:
        found = list(folder.glob(pattern))
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError(f"{pattern} never appeared: {process.communicate()[1][-3000:]}")


def test_overwrite_keeps_what_the_user_added_to_a_demo_or_results_folder(tmp_path, pair):
    demo = tmp_path / "demo"
    done = subprocess.run([sys.executable, "-m", "lightning_reg.data.synthetic", demo], capture_output=True, text=True)
    assert done.returncode == 0 and done.stderr.strip().splitlines()[-1].endswith(f"wrote {demo}"), done.stderr
    done = lightning_reg(
        [
            "register",
            "--fixed",
            demo / "fixed.nii.gz",
            "--moving",
            demo / "moving.nii.gz",
            "--out",
            demo / "out",
            *FAST,
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr
    (demo / "notes.txt").write_text("the user's notes")
    before = _snapshot(demo)
    done = subprocess.run(
        [sys.executable, "-m", "lightning_reg.data.synthetic", demo, "--overwrite"], capture_output=True, text=True
    )
    _one_line(done.returncode, done.stderr, 2, "notes.txt, out/", "move those out")
    assert _snapshot(demo) == before

    out = tmp_path / "results"  # the same for register's own folder, and --overwrite still works without them
    assert lightning_reg(_arguments(pair, out, *FAST), tmp_path).returncode == 0
    (out / "mine").mkdir()
    (out / "mine" / "plot.png").write_bytes(b"png")
    done = lightning_reg(_arguments(pair, out, *FAST, "--overwrite"), tmp_path)
    _one_line(done.returncode, done.stderr, 2, "mine/")
    (out / "mine" / "plot.png").unlink()
    (out / "mine").rmdir()
    done = lightning_reg(_arguments(pair, out, *FAST, "--overwrite"), tmp_path)
    assert done.returncode == 0, done.stderr
    assert set(json.loads((out / MARKER).read_text())["files"]) == {path.name for path in out.iterdir()} - {MARKER}


def test_two_runs_into_one_new_folder_the_first_wins_and_the_second_is_refused(tmp_path, pair):
    """Two real processes started together; both pass the check that the folder is new (both staging
    folders exist while neither has finished), so the refusal comes from the final rename."""
    out = tmp_path / "out"
    processes = [
        start_lightning_reg(
            _arguments(
                pair, out, "--scales", "2", "1", "--iterations", "400", str(200 + index), "--tolerance", "0", "--quiet"
            ),
            tmp_path,
        )
        for index in range(2)
    ]
    deadline = time.time() + 120
    while len(list(tmp_path.glob(".out.partial-*"))) < 2 and time.time() < deadline:
        assert not out.exists(), "the first run finished before the second began: give them more work"
        time.sleep(0.01)
    outcomes = [(process.wait(timeout=300), process.communicate()[1]) for process in processes]
    assert sorted(code for code, _ in outcomes) == [0, 2], outcomes
    winner = [index for index, (code, _) in enumerate(outcomes) if code == 0][0]
    _one_line(*outcomes[1 - winner], 2, "was written by another run while this one worked")
    assert json.loads((out / "metrics.json").read_text())["iterations"] == [400, 200 + winner]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["inputs", "notes.txt", "out"]  # no staging left


def test_path_problems_of_out_are_found_before_the_work(tmp_path, pair):
    """An iteration count that would take minutes: the answer comes at once, so it came first."""
    (tmp_path / "afile").write_text("a file")
    started = time.perf_counter()
    done = lightning_reg(_arguments(pair, tmp_path / "afile" / "sub", *ENDLESS), tmp_path)
    _one_line(done.returncode, done.stderr, 2, "afile is a file, not a folder")
    assert time.perf_counter() - started < 60
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    done = lightning_reg(_arguments(pair, loop / "out", *ENDLESS), tmp_path)
    _one_line(done.returncode, done.stderr, 2, "loop of symbolic links")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["afile", "inputs", "loop", "notes.txt"]


def test_an_input_that_is_a_loop_of_links_is_one_line(tmp_path, pair):
    loop = tmp_path / "loop.nii.gz"
    loop.symlink_to(loop)
    done = lightning_reg(
        ["register", "--fixed", loop, "--moving", pair["moving"], "--out", tmp_path / "out", *FAST], tmp_path
    )
    _one_line(done.returncode, done.stderr, 2, "loop.nii.gz is a loop of symbolic links")
    done = lightning_reg(
        [
            "apply",
            "--reference",
            pair["fixed"],
            "--input",
            loop,
            "--transforms",
            tmp_path,
            "--out",
            tmp_path / "moved.nii.gz",
        ],
        tmp_path,
    )
    _one_line(done.returncode, done.stderr, 2, "--input", "is a loop of symbolic links")


def test_ctrl_c_during_register_is_one_line_exit_130_and_leaves_nothing(tmp_path, pair):
    out = tmp_path / "out"
    process = start_lightning_reg(_arguments(pair, out, *ENDLESS), tmp_path)
    _wait_for(".out.partial-*", tmp_path, process)
    time.sleep(1.0)  # inside the solve
    process.send_signal(signal.SIGINT)
    _, error = process.communicate(timeout=120)
    _one_line(process.returncode, error, 130, "lightning-reg register: interrupted (Ctrl-C)")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["inputs", "notes.txt"]


def test_a_staging_folder_left_by_a_killed_run_is_removed_by_the_next(tmp_path, pair):
    out = tmp_path / "out"
    process = start_lightning_reg(_arguments(pair, out, *ENDLESS), tmp_path)
    (staging,) = _wait_for(".out.partial-*", tmp_path, process)
    (staging / "warped.nii.gz").write_bytes(b"half a file")
    process.send_signal(signal.SIGKILL)
    process.communicate()
    assert staging.is_dir()  # what a kill leaves
    done = lightning_reg(_arguments(pair, out, *FAST), tmp_path)
    assert done.returncode == 0, done.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["inputs", "notes.txt", "out"]
    nib.load(out / "warped.nii.gz").get_fdata()  # whole


def test_an_inverse_that_did_not_converge_is_a_warning_a_field_and_can_be_left_out(tmp_path, pair):
    """Free-form steps of 4 voxels without smoothing fold the map: it has no inverse there."""
    folding = [
        "--transform",
        "freeform",
        "--learning-rate",
        "4",
        "--scales",
        "1",
        "--iterations",
        "30",
        "--tolerance",
        "0",
        "--quiet",
    ]
    reports = {}
    for choice in ("write", "converged", "skip"):
        out = tmp_path / choice
        done = lightning_reg(_arguments(pair, out, *folding, "--inverse-warp", choice), tmp_path)
        assert done.returncode == 0, done.stderr
        reports[choice] = json.loads((out / "metrics.json").read_text())
        written = (out / "1InverseWarp.nii.gz").is_file()
        assert written == (choice == "write"), choice
        if choice != "skip":
            assert "warning: the inverse warp is not the warp's inverse" in done.stderr
    assert reports["write"]["folding_percent"] > 0
    assert reports["write"]["inverse"]["converged"] is False and reports["write"]["inverse"]["written"] is True
    assert reports["write"]["inverse"]["residual_voxels"] > 0.1
    assert reports["converged"]["inverse"]["written"] is False
    assert "inverse" not in reports["skip"] and "inverse" not in reports["skip"]["seconds_per_phase"]


def test_metrics_say_how_the_result_was_made_and_results_are_byte_identical(tmp_path, pair):
    runs = []
    for name in ("one", "two"):
        out = tmp_path / name
        done = lightning_reg(_arguments(pair, out, *FAST, "--threads", "1", "--window", "5"), tmp_path)
        assert done.returncode == 0, done.stderr
        assert done.stderr.strip().splitlines()[-1] == f"lightning-reg register: wrote {out}"
        runs.append(out)
    report = json.loads((runs[0] / "metrics.json").read_text())
    assert report["command"].startswith("lightning-reg register --fixed ") and "--window 5" in report["command"]
    assert report["versions"]["torch"] == torch.__version__ and report["versions"]["lightning_reg"]
    assert report["machine"]["threads"] == 1
    for key in ("fixed", "moving", "fixed_seg", "moving_seg"):
        assert report["inputs"][key] == {"path": str(pair[key]), "sha256": sha256(pair[key])}
    solver = report["solver"]
    assert solver["similarity_options"]["window"] == 5 and solver["transform_options"]["learning_rate"] == 0.25
    assert (solver["optimizer"], solver["interpolation"], solver["regularizer"]) == ("adam", "linear", None)
    assert solver["iterations"] == [4, 2] and solver["scales"] == [2.0, 1.0]
    assert 0 <= report["dice_before"] < report["dice"]
    phases = {"reading", "registration", "warping", "inverse", "qc", "metrics", "writing"}
    assert set(report["seconds_per_phase"]) == phases
    # the same inputs and thread count give the same bytes (metrics.json differs only in its seconds)
    first, second = _snapshot(runs[0]), _snapshot(runs[1])
    assert first.keys() == second.keys()
    for name in first:
        if name != "metrics.json":
            assert first[name] == second[name], name
    timings = ("seconds", "seconds_per_phase", "command")
    documents = [
        {key: value for key, value in json.loads(snapshot["metrics.json"]).items() if key not in timings}
        for snapshot in (first, second)
    ]
    assert documents[0] == documents[1]


def test_fit_with_no_end_trains_until_stopped_at_a_constant_learning_rate(tmp_path):
    """``--trainer.max_epochs -1`` (Lightning: until stopped); stopped here by ``max_time``."""
    done = lightning_reg(
        [
            "fit",
            "--data.shape",
            "[32,32]",
            "--data.train_pairs",
            "2",
            "--data.val_pairs",
            "1",
            "--trainer.enable_progress_bar",
            "false",
            "--model.train_solver.iterations",
            "[3,3,3]",
            "--trainer.max_epochs",
            "-1",
            "--trainer.max_steps",
            "-1",
            "--trainer.max_time",
            "00:00:00:20",
        ],
        tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "learning rate stays at --model.lr" in done.stderr and "Traceback" not in done.stderr
    (run,) = (tmp_path / "runs" / "lightning-reg").iterdir()
    assert done.stderr.strip().splitlines()[-1] == f"lightning-reg fit: wrote {Path('runs/lightning-reg') / run.name}"
    checkpoint = torch.load(run / "checkpoints" / "last.ckpt", weights_only=False)
    assert checkpoint["global_step"] >= 2 and checkpoint["lr_schedulers"] == []
    assert checkpoint["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(2e-3)
