"""``lightning-reg register``, end to end: the output folder, then read, solve, invert beside qc.png,
measure, report and write; or every pair of ``--pairs``."""

from __future__ import annotations

import argparse
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ...errors import recorded_warnings
from ...files import strict_json
from ...files.output_folder import OutputFolder, write_text
from ...solver import RegistrationResult
from ...solver.geometry.inverse import InverseField
from ..progress import Phases
from .batch import check_arguments, run_batch
from .load import load
from .measure import measure, warped_labels
from .report import build_report
from .request import RegisterRequest
from .solve import solve
from .write import write_outputs, write_quality_figure


def run(args: argparse.Namespace) -> dict:
    """Register, write the outputs into ``args.out``, return the metrics (and ``out``); with
    ``args.pairs``, every pair of that CSV (:mod:`.batch`)."""
    check_arguments(args)
    if args.pairs is not None:
        return run_batch(args, run)
    request = RegisterRequest.from_arguments(args)
    request.check()
    phases = Phases("lightning-reg register", request.quiet)
    inputs = [*request.input_files.values(), *([request.checkpoint] if request.checkpoint else [])]
    output = OutputFolder(request.out, request.overwrite, inputs)
    with recorded_warnings() as said, output.staged("lightning-reg register") as folder:
        report = register_files(request, phases, folder, said)  # every problem of --out before the work
    return {**report, "out": str(request.out)}


def register_files(request: RegisterRequest, phases: Phases, folder: Path, said: list[str] | None = None) -> dict:
    """Load, solve, measure, report and write into ``folder``; returns what ``metrics.json`` holds
    (with ``said``, the warnings issued meanwhile: :func:`recorded_warnings`)."""
    if request.threads:
        torch.set_num_threads(request.threads)
    with phases.phase("reading", None):
        loaded = load(request)
    result, described = solve(request, loaded, phases)
    seconds = phases.seconds["registration"]
    with phases.phase("warping", None):
        warped = result.warp(loaded.moving.data.to(request.device))[0]
        warped_seg = warped_labels(request, loaded, result)
    # the inversion (torch, which lets go of the GIL) runs beside qc.png (matplotlib, which holds it)
    with ThreadPoolExecutor(max_workers=1) as beside:
        inverting = beside.submit(_invert, result, phases) if request.inverse_warp != "skip" else None
        if not request.no_qc:
            with phases.phase("qc", None):
                write_quality_figure(folder / "qc.png", result, loaded, warped, warped_seg)
        inverse = None if inverting is None else inverting.result()
    with phases.phase("metrics", "measured"):
        measured = measure(request, loaded, result, seconds, inverse, warped_seg)
    report = build_report(request, described, result, measured, seconds, inverse)
    with phases.phase("writing", "wrote the results"):
        written = inverse if inverse is not None and report["inverse"]["written"] else None
        write_outputs(folder, result, written, loaded, warped, warped_seg)
    report.update(solver=described, **loaded.provenance, seconds_per_phase=dict(phases.seconds))
    report["warnings"] = list(said or [])
    write_text(folder / "metrics.json", strict_json.dumps(report, indent=2))
    return report


def _invert(result: RegistrationResult, phases: Phases) -> InverseField:
    with phases.phase("inverse", "inverted the warp", "inverting the warp ..."):
        return result.inverse_field()
