"""``lightning-reg register``'s report and request, on tensors and options alone: no file is read or
written (``cli.register.report.build_report``, ``cli.register.request.RegisterRequest``)."""

import dataclasses
from pathlib import Path

import pytest
import torch

from lightning_reg.cli.register import build_parser
from lightning_reg.cli.register.report import Measured, build_report
from lightning_reg.cli.register.request import RegisterRequest
from lightning_reg.data.synthetic import warped_pair
from lightning_reg.errors import InputError, RegistrationWarning
from lightning_reg.evaluation.rows import pair_rows
from lightning_reg.solver import CLASSICAL, FAST, RegistrationLayer, register
from lightning_reg.solver.geometry.inverse import InverseField

REQUEST = RegisterRequest(fixed=Path("fixed.nii.gz"), moving=Path("moving.nii.gz"), out=Path("out"))


@pytest.fixture(scope="module")
def solved():
    pair = warped_pair((32, 32), magnitude=2.0, seed=5)
    options = CLASSICAL.changed(linear="affine", iterations=(20, 10, 5))
    result = register(pair["fixed"], pair["moving"], options)
    warped = result.warp_labels(pair["moving_seg"])
    batch = {key: pair[key] for key in ("fixed", "fixed_seg", "moving_seg")}
    inverse = result.inverse_field()
    (row,) = pair_rows(batch, result, 1.5, warped_seg=warped, inverse=inverse)
    return result, RegistrationLayer(options).describe(), row, inverse


def test_the_report_says_what_was_solved_and_how_well(solved):
    result, described, row, inverse = solved
    before = {"dice": 0.25, "hd95": 9.0}
    request = dataclasses.replace(REQUEST, fixed_seg=Path("f_seg.nii.gz"), moving_seg=Path("m_seg.nii.gz"))
    report = build_report(request, described, result, Measured(row, before), 1.5, inverse)
    assert (report["transform"], report["init"], report["scales"]) == ("greedy", "affine", [4.0, 2.0, 1.0])
    assert report["iterations"] == [20, 10, 5] and report["seconds"] == 1.5
    assert report["dice"] == row["dice"] > report["dice_before"] == 0.25
    assert set(report["dice_per_label"]) == {key[len("dice_") :] for key in row if key.startswith("dice_")}
    assert report["inverse"]["converged"] and report["inverse"]["written"]
    assert report["inverse_consistency_mm"]["mean"] == row["inverse_consistency_mm"]
    assert report["label_mode"] == "linear" and "tre_mm" not in report


def test_without_labels_the_report_has_no_overlap_numbers(solved):
    result, described, row, _ = solved
    report = build_report(REQUEST, described, result, Measured(row), 1.0, None)
    assert "dice" not in report and "inverse" not in report and report["label_mode"] is None


@pytest.mark.parametrize(("wanted", "written"), [("write", True), ("converged", False)])
def test_an_inverse_is_judged_by_its_consistency_not_by_its_own_residual(solved, wanted, written):
    """An inverse that claims a residual of 0 but undoes nothing of the warp is not the inverse."""
    result, described, row, inverse = solved
    claimed = InverseField(torch.zeros_like(inverse.displacement), "fixed-point", torch.tensor([0.0]), 3)
    batch = {"fixed": result.grid.new_zeros(1, 1, *result.grid.shape[1:-1])}
    (poor,) = pair_rows(batch, result, 1.0, inverse=claimed)
    request = dataclasses.replace(REQUEST, inverse_warp=wanted)
    with pytest.warns(RegistrationWarning, match="the inverse warp is not the warp's inverse"):
        report = build_report(request, described, result, Measured({**row, **poor}), 1.0, claimed)
    assert report["inverse"]["residual_voxels"] == 0 and report["inverse"]["consistency_p95_voxels"] > 1
    assert not report["inverse"]["converged"] and report["inverse"]["written"] is written
    assert report["inverse"]["consistency_p95_voxels"] * 1.0 == pytest.approx(poor["inverse_consistency_p95_mm"])


def test_the_request_reads_the_command_line_and_fills_the_preset():
    arguments = ["--fixed", "f.nii.gz", "--moving", "m.nii.gz", "--out", "o", "--preset", "fast", "--init", "affine"]
    request = RegisterRequest.from_arguments(build_parser().parse_args(arguments))
    assert request.fixed == Path("f.nii.gz").absolute() and request.preset == "fast" and not request.learned
    options = request.classical_options()
    assert options == FAST.changed(linear="affine")
    flags = ["--iterations", "3", "2", "1", "--window", "5", "--regularizer", "diffusion"]
    changed = RegisterRequest.from_arguments(build_parser().parse_args(arguments + flags))
    with pytest.raises(InputError, match="--regularizer diffusion needs its weight"):
        changed.check()
    weighted = RegisterRequest.from_arguments(
        build_parser().parse_args([*arguments, *flags, "--regularizer-weight", "0.5"])
    )
    options = weighted.classical_options()
    assert options.iterations == (3, 2, 1) and options.similarity_options == {"window": 5}
    assert (options.regularizer, options.regularizer_weight) == ("diffusion", 0.5)


@pytest.mark.parametrize(
    ("files", "solver", "message"),
    [
        ({"fixed_seg": Path("s.nii.gz")}, {}, "give both --fixed-seg and --moving-seg"),
        ({}, {"prompt_labels": (3,)}, "--prompt-labels needs the label maps"),
        ({}, {"feature_channels": 4}, "--feature-channels reduces a --checkpoint model's features"),
        ({}, {"regularizer": "bending"}, "needs its weight"),
        ({"checkpoint": Path("m.ckpt"), "preset": "fast"}, {}, "--preset fast sets the classical solver's iterations"),
    ],
)
def test_the_request_refuses_combinations_before_any_file_is_read(files, solver, message):
    with pytest.raises(InputError, match=message):
        dataclasses.replace(REQUEST, **files, solver=solver).check()


def test_options_the_solver_cannot_use_are_refused_by_the_request():
    with pytest.raises(InputError, match="must be >= 0"):
        dataclasses.replace(REQUEST, solver={"tolerance": -1.0}).check()
