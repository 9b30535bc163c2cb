"""Fuzzing the NIfTI reader and the commands' path handling: every case ends in a result or in one
line and exit 2, never a traceback, a crash or a silently wrong volume. The reader: datatypes (RGB,
complex, every integer width, half floats), shapes (1 to 5 axes, slices across the grid), headers
(scaling, affines that are singular or not finite) and values (NaN, constant); the commands: path
shapes (``~``, folders, links, loops, fifos, names too long for the file system, missing parents)."""

from __future__ import annotations

import os
import warnings

import nibabel as nib
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lightning_reg.cli import main
from lightning_reg.errors import InputError
from lightning_reg.files.nifti import load_volume

DTYPES = ("uint8", "int8", "int16", "uint16", "int32", "uint32", "int64", "float16", "float32", "float64",
          "complex64", "rgb", "bool")  # fmt: skip
SHAPES = st.lists(st.integers(1, 5), min_size=1, max_size=5).map(tuple)
AFFINES = st.sampled_from(["identity", "oblique", "zero", "nan", "flat"])
VALUES = st.sampled_from(["random", "constant", "nan", "whole", "huge"])
#: where a NIfTI-1 header keeps scl_slope (float32)
SCL_SLOPE_OFFSET = 112
SLOPES = st.sampled_from([None, 0.0, 1.0, 0.5, float("nan")])


def _affine(name: str) -> np.ndarray:
    affine = np.diag([1.5, 1.0, 2.0, 1.0])
    if name == "oblique":
        affine[:3, :3] = np.array([[1.4, 0.2, 0.0], [-0.2, 1.0, 0.1], [0.0, -0.1, 2.0]])
    elif name == "zero":
        affine[:3, :3] = 0
    elif name == "nan":
        affine[0, 3] = np.nan
    elif name == "flat":
        affine[:3, 1] = affine[:3, 0]
    return affine


def _array(dtype: str, shape: tuple[int, ...], values: str, rng: np.random.Generator) -> np.ndarray:
    data = {"random": rng.random(shape) * 50, "constant": np.full(shape, 3.0), "whole": rng.integers(0, 4, shape)}
    data["nan"], data["huge"] = np.where(rng.random(shape) < 0.5, np.nan, 1.0), rng.random(shape) * 1e30
    array = data[values]
    if dtype == "rgb":
        colours = np.zeros(shape, dtype=[("R", "u1"), ("G", "u1"), ("B", "u1")])
        colours["R"] = np.nan_to_num(array).astype("u1")
        return colours
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.nan_to_num(array, nan=0.0, posinf=0.0).astype(dtype) if dtype not in ("float32", "float64",
            "float16", "complex64") else array.astype(dtype)  # fmt: skip


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    dtype=st.sampled_from(DTYPES),
    shape=SHAPES,
    affine=AFFINES,
    values=VALUES,
    slope=SLOPES,
    kind=st.sampled_from(["image", "label", "mask"]),
    seed=st.integers(0, 2**16),
)
def test_the_reader_returns_a_sound_volume_or_one_input_error(tmp_path, dtype, shape, affine, values, slope, kind,
                                                             seed):  # fmt: skip
    path = tmp_path / "case.nii"
    array = _array(dtype, shape, values, np.random.default_rng(seed))
    try:
        nib.save(nib.Nifti1Image(array, _affine(affine)), path)
    except Exception:  # nibabel itself refuses to write it (no such NIfTI): nothing to read
        return
    if slope is not None:  # scl_slope as any writer may have left it (nibabel refuses to write 0 or NaN)
        with open(path, "r+b") as handle:
            handle.seek(SCL_SLOPE_OFFSET)
            handle.write(np.float32(slope).tobytes())
    try:
        volume = load_volume(path, kind)
    except InputError as error:
        message = str(error)
        assert message and "\n" not in message and str(path) in message, message
        return
    assert volume.dims in (2, 3) and 1 not in volume.shape  # never a flat volume
    assert torch.isfinite(volume.data.float()).all()
    assert volume.data.dtype == (torch.int64 if kind == "label" else torch.float32)
    assert torch.isfinite(volume.affine).all() and abs(float(torch.linalg.det(volume.affine))) > 0
    if kind == "mask":
        assert float(volume.data.min()) >= 0 and float(volume.data.max()) <= 1 and bool((volume.data > 0).any())


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("paths")
    rng = np.random.default_rng(0)
    for name in ("fixed", "moving"):
        nib.save(nib.Nifti1Image(rng.random((12, 12, 10)).astype(np.float32), np.eye(4)), folder / f"{name}.nii.gz")
    (folder / "a folder").mkdir()
    (folder / "loop").symlink_to(folder / "loop")
    (folder / "dangling").symlink_to(folder / "nowhere.nii.gz")
    os.mkfifo(folder / "fifo.nii.gz")
    (folder / "text.nii.gz").write_text("not an image")
    return folder


PATH_SHAPES = [
    "{f}/missing.nii.gz",
    "{f}/a folder",
    "{f}/loop",
    "{f}/dangling",
    "{f}/fifo.nii.gz",
    "{f}/text.nii.gz",
    "{f}/" + "n" * 300 + ".nii.gz",
    "{f}/fixed.nii.gz/inside.nii.gz",
    "~/surely-missing-lightning-reg.nii.gz",
    "",
    "-",
    "{f}/missing/deeper/x.nii.gz",
]


@pytest.mark.parametrize("shape", PATH_SHAPES)
@pytest.mark.parametrize("role", ["--fixed", "--moving-seg", "--fixed-mask", "--out", "apply --input", "apply --out"])
def test_every_path_shape_ends_in_a_result_or_one_line(files, shape, role, capsys, monkeypatch):
    monkeypatch.chdir(files)
    path = shape.format(f=files)
    good = {"--fixed": files / "fixed.nii.gz", "--moving": files / "moving.nii.gz", "--out": files / "out"}
    if role.startswith("apply"):
        command = ["apply", "--reference", good["--fixed"], "--input", good["--moving"], "--transforms", files]
        command += ["--out", files / "applied.nii.gz"]
        command[command.index(role.split()[1]) + 1] = path
    else:
        arguments = {**good, role: path}
        if role == "--moving-seg":
            arguments["--fixed-seg"] = files / "fixed.nii.gz"
        command = ["register", *[str(item) for pair in arguments.items() for item in pair]]
        command += ["--scales", "1", "--iterations", "1", "--quiet", "--no-qc", "--inverse-warp", "skip"]
    try:
        code = main([str(item) for item in command])
    except SystemExit as stop:  # argparse refuses a value where it is parsed
        code = stop.code
    error = capsys.readouterr().err.strip().splitlines()
    assert code in (0, 2), error
    if code == 2:
        assert len(error) == 1 and error[0].startswith("lightning-reg ") and "Traceback" not in error[0], error
