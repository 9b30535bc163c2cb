"""Fault injection on `lightning-reg register`, `sweep` and the demo writer: nothing the user wrote is
lost, nothing is left half-written, and every failure is one line with exit code 2.

Each test names the row of issue 14 it covers. In-process runs (``main``) are used where nothing can
crash the interpreter; a real subprocess where a crash (segmentation fault) is what is tested, or
where the working folder on ``sys.path`` matters (``python -m``)."""

from __future__ import annotations

import errno
import gzip
import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
import torch
import yaml
from helpers import lightning_reg

from lightning_reg.cli import main
from lightning_reg.data.synthetic import warped_pair

FAST = ["--scales", "2", "1", "--iterations", "4", "2", "--quiet"]


def _main(arguments) -> int:
    """``main`` here; a usage error from argparse exits, as in the console script."""
    try:
        return main([str(argument) for argument in arguments])
    except SystemExit as stop:
        return stop.code


def _register(capsys, pair, out, *extra) -> tuple[int, str]:
    capsys.readouterr()
    code = _main(["register", "--fixed", pair["fixed"], "--moving", pair["moving"], "--out", out, *FAST, *extra])
    return code, capsys.readouterr().err


def _one_line(code: int, error: str, *expected: str) -> None:
    assert code == 2, error
    assert len(error.strip().splitlines()) == 1 and "Traceback" not in error, error
    for text in expected:
        assert text in error, error


def _with_affine(source: Path, target: Path, affine: np.ndarray) -> Path:
    """``source``'s data under a header whose sform is ``affine`` (and no qform), as damaged headers
    come: nibabel itself refuses to build a qform from a singular matrix."""
    data = np.asanyarray(nib.load(source).dataobj)
    header = nib.Nifti1Header()
    header.set_data_shape(data.shape)
    header.set_zooms((1.5,) * data.ndim)
    header.set_sform(affine, code=1)
    header.set_qform(None, code=0)
    nib.save(nib.Nifti1Image(data, None, header), target)
    return target


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


# ------------------------------------------------------------------------ the four data-safety defects
def test_overwrite_never_empties_the_working_folder(tmp_path, pair, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = _snapshot(tmp_path)
    _one_line(*_register(capsys, pair, ".", "--overwrite"), "is the working folder")
    _one_line(*_register(capsys, pair, tmp_path.parent, "--overwrite"), "is the working folder or holds it")
    assert _snapshot(tmp_path) == before


def test_overwrite_never_deletes_a_folder_holding_the_inputs(tmp_path, pair, capsys):
    before = _snapshot(tmp_path)
    _one_line(*_register(capsys, pair, pair["fixed"].parent, "--overwrite"), "holds the input")
    assert _snapshot(tmp_path) == before


def test_overwrite_replaces_only_a_folder_that_lightning_reg_wrote(tmp_path, pair, capsys):
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "thesis.tex").write_text("months of work")
    _one_line(*_register(capsys, pair, theirs, "--overwrite"), "was not written by lightning-reg")
    assert (theirs / "thesis.tex").read_text() == "months of work"
    code, error = _register(capsys, pair, tmp_path / "ours")
    assert code == 0, error
    assert (tmp_path / "ours" / ".lightning-reg-output").is_file()
    code, error = _register(capsys, pair, tmp_path / "ours", "--overwrite")
    assert code == 0, error


def test_a_sweep_name_is_never_used_as_a_path(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    victim = tmp_path / "precious"
    victim.mkdir()
    (victim / "data.txt").write_text("keep")
    (tmp_path / "evil.yaml").write_text(
        yaml.safe_dump(
            {
                "name": str(victim),
                "method": "grid",
                "metric": {"name": "val/dice"},
                "parameters": {"model.lr": {"values": [0.1]}},
                "command": ["lightning-reg", "validate", "${args}"],
            }
        )
    )
    _one_line(main(["sweep", "evil.yaml", "--overwrite"]), capsys.readouterr().err, "must be a plain folder name")
    assert (victim / "data.txt").read_text() == "keep"


def test_a_failure_after_overwrite_leaves_the_old_results_as_they_were(tmp_path, pair, capsys, monkeypatch):
    out = tmp_path / "out"
    code, error = _register(capsys, pair, out)
    assert code == 0, error
    before = _snapshot(out)

    broken = _with_affine(pair["fixed"], tmp_path / "broken.nii.gz", np.zeros((4, 4)))  # fails while loading
    capsys.readouterr()
    code = main(
        ["register", "--fixed", str(broken), "--moving", str(pair["moving"]), "--out", str(out), *FAST, "--overwrite"]
    )
    _one_line(code, capsys.readouterr().err, "damaged header")
    assert _snapshot(out) == before

    written = []

    def full_disk(data, reference, path, kind="image"):  # the second file finds the disk full
        if written:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        written.append(path)
        Path(path).write_bytes(b"partial")

    monkeypatch.setattr("lightning_reg.cli.register.write.save_volume", full_disk)
    _one_line(
        *_register(
            capsys, pair, out, "--overwrite", "--fixed-seg", pair["fixed_seg"], "--moving-seg", pair["moving_seg"]
        ),
        "disk is full",
        f"({out} was left as it was)",
    )
    assert _snapshot(out) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["broken.nii.gz", "inputs", "notes.txt", "out"]


def test_a_checkpoint_cannot_run_code_from_the_working_folder(tmp_path, trained_run, pair):
    checkpoint = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)
    checkpoint["hyper_parameters"]["network"] = {"class_path": "mymod.Net", "init_args": {}}
    torch.save(checkpoint, tmp_path / "evil.ckpt")
    (tmp_path / "mymod.py").write_text("open('PWNED', 'w').write('ran')\nimport torch\nNet = torch.nn.Identity\n")
    slice_pair = {key: tmp_path / f"{key}.nii.gz" for key in ("fixed", "moving")}
    for path in slice_pair.values():
        nib.save(nib.Nifti1Image(np.random.rand(32, 32, 1).astype(np.float32), np.eye(4)), path)
    runs = {
        "register": [
            "register",
            "--fixed",
            slice_pair["fixed"],
            "--moving",
            slice_pair["moving"],
            "--checkpoint",
            "evil.ckpt",
            "--out",
            "o",
        ],
        "test": ["test", "--ckpt_path", "evil.ckpt", "--data.shape", "[32,32]", "--data.test_pairs", "1"],
    }
    for arguments in runs.values():
        done = lightning_reg(arguments, tmp_path)  # python -m lightning_reg.cli: the working folder on sys.path
        last = done.stderr.strip().splitlines()[-1]
        assert done.returncode == 2 and "'mymod.Net'" in last and "LIGHTNING_REG_TRUSTED_MODULES" in last, done.stderr
        assert "Traceback" not in done.stderr
        assert not (tmp_path / "PWNED").exists()
    trusted = lightning_reg(runs["register"], tmp_path, LIGHTNING_REG_TRUSTED_MODULES="mymod")
    assert trusted.returncode == 2 and "mymod" in trusted.stderr, trusted.stderr  # trusted, yet not imported here
    assert not (tmp_path / "PWNED").exists()


# ------------------------------------------------------------------------------- the other faults
def test_a_damaged_header_is_named_and_ignore_header_registers_anyway(tmp_path, pair, capsys):
    for name, affine in (
        ("zeros", np.zeros((4, 4))),
        ("nan", np.full((4, 4), np.nan)),
        ("flat", np.diag([1.0, 1.0, 0.0, 1.0])),
    ):
        _with_affine(pair["moving"], tmp_path / f"{name}.nii.gz", affine)
        capsys.readouterr()
        code = main(
            [
                "register",
                "--fixed",
                str(pair["fixed"]),
                "--moving",
                str(tmp_path / f"{name}.nii.gz"),
                "--out",
                str(tmp_path / name),
                *FAST,
            ]
        )
        _one_line(code, capsys.readouterr().err, "damaged header", "--ignore-header")
        assert not (tmp_path / name).exists()
    code = main(
        [
            "register",
            "--fixed",
            str(pair["fixed"]),
            "--moving",
            str(tmp_path / "zeros.nii.gz"),
            "--out",
            str(tmp_path / "ignored"),
            "--ignore-header",
            *FAST,
        ]
    )
    assert code == 0
    written = nib.load(tmp_path / "ignored" / "warped.nii.gz")
    assert np.allclose(np.abs(np.diag(written.affine))[:3], 1.5)


def test_images_larger_than_the_limit_are_refused_from_the_header(tmp_path, pair, capsys):
    bomb = tmp_path / "bomb.nii.gz"  # a header claiming 2000^3 voxels over a few bytes of data
    header = nib.Nifti1Header()
    header.set_data_shape((2000, 2000, 2000))
    header.set_data_dtype(np.uint8)
    header["vox_offset"] = 352
    bomb.write_bytes(gzip.compress(header.binaryblock + b"\0" * 4 + b"\0" * 8))
    capsys.readouterr()
    code = main(["register", "--fixed", str(pair["fixed"]), "--moving", str(bomb), "--out", str(tmp_path / "o"), *FAST])
    _one_line(code, capsys.readouterr().err, "8,000,000,000 voxels", "--max-voxels")
    _one_line(*_register(capsys, pair, tmp_path / "o", "--max-voxels", 1000), "more than the limit of 1,000")
    assert not (tmp_path / "o").exists()
    from lightning_reg.files.nifti import default_max_voxels

    assert default_max_voxels() > 10**6


def _limit_file_size():
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000))


def test_a_write_error_of_the_disk_is_one_line_and_leaves_nothing_half_written(tmp_path, pair):
    """A real write failure: the process may write files of at most 20 kB (``ulimit -f``), less
    than its outputs; Python ignores SIGXFSZ, so the write fails with EFBIG."""
    environment = dict(os.environ, WANDB_MODE="offline")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightning_reg.cli",
            "register",
            "--fixed",
            str(pair["fixed"]),
            "--moving",
            str(pair["moving"]),
            "--out",
            str(tmp_path / "out"),
            *FAST,
        ],
        capture_output=True,
        text=True,
        env=environment,
        preexec_fn=_limit_file_size,
    )
    _one_line(done.returncode, done.stderr, "File too large", "was not created")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["inputs", "notes.txt"]


def test_a_read_only_output_folder_is_one_line(tmp_path, pair, capsys, monkeypatch):
    """Root ignores file modes, so the file system's answer is injected where it comes: at mkdir."""
    original = Path.mkdir

    def read_only(self, *args, **kwargs):
        if "partial" in self.name:
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    _one_line(*_register(capsys, pair, tmp_path / "out"), "read-only", "write elsewhere")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "option, message",
    [
        (["--device", "foo"], "'foo' is not a device"),
        (["--learning-rate", "nan"], "must be a finite number"),
        (["--learning-rate", "0"], "learning_rate must be > 0"),
        (["--prompt-weight", "nan"], "must be a finite number"),
        (["--regularizer-weight", "inf"], "must be a finite number"),
        (["--tolerance", "nan"], "must be a finite number"),
        (["--tolerance", "-1"], "tolerance must be >= 0"),
        (["--threads", "0"], "--threads: must be >= 1"),
        (["--iterations", "-3", "2"], "--iterations: must be >= 0"),
        (["--regularizer", "diffusion"], "needs its weight: give --regularizer-weight"),
        (["--regularizer", "bending", "--regularizer-weight", "0"], "has weight 0"),
    ],
)
def test_bad_numbers_and_devices_are_refused_where_they_are_parsed(tmp_path, pair, capsys, option, message):
    _one_line(*_register(capsys, pair, tmp_path / "o", *option), message)
    assert not (tmp_path / "o").exists()


def test_label_values_beyond_32_bits_keep_their_values(tmp_path, pair, capsys):
    for key in ("fixed_seg", "moving_seg"):
        labels = np.asanyarray(nib.load(pair[key]).dataobj).astype(np.int64) * 1_000_000_007  # up to 8e9
        nib.save(nib.Nifti1Image(labels, nib.load(pair[key]).affine, dtype=np.int64), tmp_path / f"{key}.nii.gz")
    for mode in ("nearest", "linear"):
        code, error = _register(
            capsys,
            pair,
            tmp_path / mode,
            "--fixed-seg",
            tmp_path / "fixed_seg.nii.gz",
            "--moving-seg",
            tmp_path / "moving_seg.nii.gz",
            "--label-mode",
            mode,
        )
        assert code == 0, error
        warped = np.asanyarray(nib.load(tmp_path / mode / "warped_seg.nii.gz").dataobj)
        original = set(np.unique(np.asanyarray(nib.load(tmp_path / "moving_seg.nii.gz").dataobj)).tolist())
        assert set(np.unique(warped).tolist()) <= original and max(original) > 2**32
        assert json.loads((tmp_path / mode / "metrics.json").read_text())["dice"] > 0.5


def test_images_that_do_not_overlap_in_world_space_are_refused(tmp_path, pair, capsys):
    far = np.diag([1.5, 1.5, 1.5, 1.0])
    far[:3, 3] = [500.0, 0.0, 0.0]
    nib.save(nib.Nifti1Image(np.asanyarray(nib.load(pair["moving"]).dataobj), far), tmp_path / "far.nii.gz")
    capsys.readouterr()
    code = main(
        [
            "register",
            "--fixed",
            str(pair["fixed"]),
            "--moving",
            str(tmp_path / "far.nii.gz"),
            "--out",
            str(tmp_path / "o"),
            *FAST,
        ]
    )
    _one_line(code, capsys.readouterr().err, "do not overlap in world space", "--ignore-header")
    assert not (tmp_path / "o").exists()


def test_a_checkpoint_with_huge_weights_ends_in_one_line_not_a_crash(tmp_path, trained_run):
    checkpoint = torch.load(trained_run / "checkpoints" / "last.ckpt", weights_only=True)
    # the output heads (after the last normalization): features of order 1e30, finite in float32,
    # whose squares overflow inside the solver's energy
    checkpoint["state_dict"] = {
        key: value * 1e30 if key.startswith(("network.heads.", "network.unet.heads.")) else value
        for key, value in checkpoint["state_dict"].items()
    }
    if "network.gate" in checkpoint["state_dict"]:  # AddedFeatures: open the gate to the huge channels
        checkpoint["state_dict"]["network.gate"] = torch.tensor(1.0)
    torch.save(checkpoint, tmp_path / "huge.ckpt")
    for key in ("fixed", "moving"):
        nib.save(nib.Nifti1Image(np.random.rand(32, 32, 1).astype(np.float32), np.eye(4)), tmp_path / f"{key}.nii.gz")
    done = lightning_reg(
        [
            "register",
            "--fixed",
            "fixed.nii.gz",
            "--moving",
            "moving.nii.gz",
            "--checkpoint",
            "huge.ckpt",
            "--out",
            "o",
            "--quiet",
        ],
        tmp_path,
    )
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr  # not -11 (crash)
    assert "not finite" in done.stderr or "NaN or infinite" in done.stderr, done.stderr
    assert not (tmp_path / "o").exists()


def test_the_sampler_never_sees_a_coordinate_that_crashes_it():
    """NaN coordinates in grid_sample's 2D border backward crash the process (segmentation fault);
    huge ones index out of range. Run in a subprocess, so a crash fails this test only."""
    code = (
        "import torch\nfrom lightning_reg.solver.geometry.spatial import sample\n"
        "image = torch.rand(1, 16, 32, 32, requires_grad=True)\n"
        "grid = torch.rand(1, 32, 32, 2) * 2 - 1\n"
        "grid.view(-1)[::3] = float('nan'); grid.view(-1)[1::5] = 1e30; grid.view(-1)[2::7] = -float('inf')\n"
        "grid.requires_grad_()\n"
        "for mode in ('border', 'zeros'):\n"
        "    out = sample(image, grid, padding_mode=mode)\n"
        "    out.sum().backward()\n"
        "print(bool(torch.isfinite(out).all()), bool(torch.isfinite(grid.grad).all()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True"]


def test_a_diverged_warp_stays_visibly_not_finite():
    """The sampler cleans NaN coordinates (it would crash on them), so what it returns must not hide
    them: the warped image is NaN, and so is the last energy of a pair whose parameters are."""
    from lightning_reg.solver import register

    images = warped_pair((24, 24), magnitude=2.0, seed=1)
    broken = torch.full((1, 3, 3), float("nan"))
    for transform in ("affine", "greedy"):
        result = register(
            images["fixed"], images["moving"], transform=transform, iterations=(3,), scales=(1,), init=broken
        )
        assert not torch.isfinite(result.grid).any() and torch.isnan(result.warp(images["moving"])).all()
    affine = register(images["fixed"], images["moving"], transform="affine", iterations=(3,), scales=(1,), init=broken)
    assert torch.isnan(affine.loss_trace[-1][-1]).all()
    finite = register(images["fixed"], images["moving"], iterations=(3,), scales=(1,))
    assert torch.isfinite(finite.loss_trace[-1]).all()


# ------------------------------------------------------------------------------------ atomic files
def test_an_interrupted_write_leaves_the_old_file_and_no_partial_one(tmp_path):
    from lightning_reg.files.output_folder import atomic_path

    target = tmp_path / "metrics.json"
    target.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise KeyboardInterrupt
    assert target.read_text() == "old" and sorted(tmp_path.iterdir()) == [target]


def test_a_checkpoint_write_that_fails_leaves_the_old_checkpoint(tmp_path, monkeypatch):
    from lightning_reg.training.checkpoints import AtomicCheckpointIO

    path = tmp_path / "last.ckpt"
    io = AtomicCheckpointIO()
    io.save_checkpoint({"state_dict": {"w": torch.ones(3)}, "epoch": 0}, path)

    def killed(checkpoint, target):
        Path(target).write_bytes(b"\x80 half a pickle")
        raise OSError(errno.ENOSPC, "No space left on device", str(target))

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(OSError):
        io.save_checkpoint({"state_dict": {"w": torch.zeros(3)}, "epoch": 1}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True)["epoch"] == 0 and sorted(tmp_path.iterdir()) == [path]
    with pytest.raises(ValueError, match="not finite"):
        io.save_checkpoint({"state_dict": {"w": torch.full((3,), float("nan"))}, "epoch": 2}, path)
    assert torch.load(path, weights_only=True)["epoch"] == 0


def test_an_output_folder_is_replaced_only_when_complete(tmp_path):
    from lightning_reg.files.output_folder import OutputFolder

    folder = tmp_path / "results"
    with OutputFolder(folder).staged() as staging:
        (staging / "a.txt").write_text("first")
    with pytest.raises(ValueError, match=r"disk is full.*was left as it was"):
        with OutputFolder(folder, overwrite=True).staged() as staging:
            (staging / "a.txt").write_text("second, half")
            raise OSError(errno.ENOSPC, "No space left on device", str(staging / "b.txt"))
    assert (folder / "a.txt").read_text() == "first"
    assert sorted(path.name for path in tmp_path.iterdir()) == ["results"]


def test_a_staging_folder_killed_before_its_marker_is_removed_and_a_live_one_kept(tmp_path):
    """A run killed between making its staging folder and marking it leaves no marker: the next run
    removes it (a live run makes, marks and locks its folder under the parent's lock at once)."""
    from lightning_reg.files.output_folder import OutputFolder

    folder = tmp_path / "results"
    (tmp_path / ".results.partial-dead").mkdir()
    (tmp_path / ".results.partial-dead" / "warped.nii.gz").write_bytes(b"half a file")
    live = OutputFolder(tmp_path / "results")
    live_staging = live.begin()
    with OutputFolder(folder, overwrite=True).staged() as staging:
        (staging / "a.txt").write_text("done")
    names = sorted(path.name for path in tmp_path.iterdir())
    assert names == sorted([live_staging.name, "results"])  # the dead one gone, the live one kept


def test_the_demo_writer_refuses_to_overwrite(tmp_path, monkeypatch, capsys):
    from lightning_reg.data.synthetic import main as demo

    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    (tmp_path / "demo" / "fixed.nii.gz").write_text("mine")
    _one_line(demo(["demo"]), capsys.readouterr().err, "exists; pass --overwrite")
    _one_line(demo(["demo", "--overwrite"]), capsys.readouterr().err, "was not written by lightning-reg")
    assert (tmp_path / "demo" / "fixed.nii.gz").read_text() == "mine"


# ------------------------------------------------------------------------------------------ sweeps
def test_sweep_parameters_never_reach_a_shell(tmp_path):
    (tmp_path / "inject.yaml").write_text(
        yaml.safe_dump(
            {
                "name": "inject",
                "method": "grid",
                "metric": {"name": "val/dice"},
                "parameters": {"model.eval_solver.transform": {"values": ["svf; touch PWNED", "$(touch PWNED2)"]}},
                "command": ["lightning-reg", "validate", "${args}"],
            }
        )
    )
    done = lightning_reg(["sweep", "inject.yaml"], tmp_path)
    assert done.returncode == 2 and "the first run was refused" in done.stderr, done.stderr[-2000:]
    assert "unknown transform 'svf; touch PWNED'" in done.stderr  # arrived as one argument, verbatim, and was refused
    assert not (tmp_path / "PWNED").exists() and not (tmp_path / "PWNED2").exists()
    assert not (tmp_path / "runs" / "sweeps" / "inject").exists()  # a failed sweep leaves no folder
