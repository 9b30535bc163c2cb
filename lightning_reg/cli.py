"""Command line: ``lightning-reg fit|validate|test|predict`` (LightningCLI, ``trainer_cli.py``) and
``lightning-reg register`` (classical registration of two NIfTI files)."""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Sequence

import torch
from tqdm import tqdm

from . import metrics
from .io import InputError, Volume, load_volume, save_itk_displacement, save_volume
from .solver import SIMILARITIES, TRANSFORMS, register
from .solver.regularizers import REGULARIZERS

EXIT_BAD_INPUT = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (exit code 2)."""

    def error(self, message: str) -> None:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def build_register_parser(prog: str = "lightning-reg register") -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description="Register a moving NIfTI image to a fixed one.")
    parser.add_argument("--fixed", required=True, type=Path, help="fixed image (.nii/.nii.gz)")
    parser.add_argument("--moving", required=True, type=Path, help="moving image (.nii/.nii.gz)")
    parser.add_argument("--fixed-seg", type=Path, help="fixed label map, for Dice/HD95")
    parser.add_argument("--moving-seg", type=Path, help="moving label map, warped into fixed space")
    parser.add_argument("--transform", default="greedy", choices=list(TRANSFORMS))
    parser.add_argument("--similarity", default="lncc", choices=list(SIMILARITIES))
    parser.add_argument("--scales", type=float, nargs="+", default=[4, 2, 1], help="coarse to fine")
    parser.add_argument("--iterations", type=int, nargs="+", default=[200, 100, 50], help="one per scale")
    parser.add_argument("--init", default="none", choices=["none", "rigid", "affine"],
                        help="run a linear registration first, then --transform from it (as ANTs)")
    parser.add_argument("--learning-rate", type=float, help="step: voxels (deformable) or frame units (linear)")
    parser.add_argument("--window", type=int, default=7, help="lncc window, voxels")
    parser.add_argument("--regularizer", default="none", choices=["none", *REGULARIZERS])
    parser.add_argument("--regularizer-weight", type=float, default=0.0)
    parser.add_argument("--tolerance", type=float, default=1e-6, help="early stop: relative energy change")
    parser.add_argument("--label-mode", default="nearest", choices=["nearest", "linear"],
                        help="label warping: nearest voxel or linear one-hot")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def _check_pair(image: Volume, seg: Volume | None, role: str) -> None:
    if seg is not None and seg.shape != image.shape:
        raise InputError(f"{role} seg {seg.path} has shape {seg.shape} but {role} image has {image.shape}")


def _load_inputs(args: argparse.Namespace) -> tuple[Volume, Volume, Volume | None, Volume | None]:
    if (args.fixed_seg is None) != (args.moving_seg is None):
        raise InputError("give both --fixed-seg and --moving-seg, or neither")
    fixed, moving = load_volume(args.fixed), load_volume(args.moving)
    if fixed.dims != moving.dims:
        raise InputError(f"fixed image is {fixed.dims}D but moving image is {moving.dims}D")
    if fixed.data.shape[1] != moving.data.shape[1]:
        raise InputError(f"fixed has {fixed.data.shape[1]} channels, moving {moving.data.shape[1]}")
    fixed_seg = load_volume(args.fixed_seg, "label") if args.fixed_seg else None
    moving_seg = load_volume(args.moving_seg, "label") if args.moving_seg else None
    _check_pair(fixed, fixed_seg, "fixed")
    _check_pair(moving, moving_seg, "moving")
    return fixed, moving, fixed_seg, moving_seg


def _check_options(args: argparse.Namespace) -> None:
    if len(args.scales) != len(args.iterations):
        raise InputError(f"--scales has {len(args.scales)} values but --iterations has {len(args.iterations)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
    if args.out.exists() and not args.overwrite:
        raise InputError(f"output folder {args.out} exists; pass --overwrite to replace it")


def _progress(total: int, quiet: bool):
    bar = tqdm(total=total, disable=quiet, unit="it", dynamic_ncols=True, file=sys.stderr)

    def callback(scale_index: int, iteration: int, energies: torch.Tensor) -> None:
        bar.set_postfix(scale=scale_index, energy=f"{float(energies.mean()):.5f}", refresh=False)
        bar.update(1)

    return bar, callback


def run_register(args: argparse.Namespace) -> dict:
    """Register, write the outputs into ``args.out``, return the metrics."""
    _check_options(args)
    fixed, moving, fixed_seg, moving_seg = _load_inputs(args)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    common = dict(similarity=args.similarity, scales=args.scales, iterations=args.iterations,
                  fixed_affine=fixed.affine, moving_affine=moving.affine, tolerance=args.tolerance,
                  similarity_options={"window": args.window} if args.similarity == "lncc" else None)
    start = time.perf_counter()
    bar, callback = _progress(sum(args.iterations) * (2 if args.init != "none" else 1), args.quiet)
    fixed_data, moving_data = fixed.data.to(device), moving.data.to(device)
    init = None
    if args.init != "none":
        init = register(fixed_data, moving_data, transform=args.init, callback=callback, **common)
    options = {"learning_rate": args.learning_rate} if args.learning_rate else {}
    result = register(fixed_data, moving_data, transform=args.transform, init=init, callback=callback,
                      regularizer=args.regularizer, regularizer_weight=args.regularizer_weight,
                      transform_options=options, **common)
    bar.total = bar.n  # pairs may stop early: end the bar where the solver ended
    bar.close()
    seconds = time.perf_counter() - start

    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    save_volume(result.warp(moving_data)[0], fixed, args.out / "warped.nii.gz")
    save_itk_displacement(result.displacement_mm()[0], fixed, args.out / "warp.nii.gz")
    determinant = result.jacobian_determinant()
    report = {"transform": args.transform, "similarity": args.similarity, "init": args.init,
              "folding_percent": metrics.folding_percent(determinant),
              "sdlogj": metrics.sdlogj(determinant), "seconds": seconds}
    if fixed_seg is not None:
        warped_seg = result.warp_labels(moving_seg.data.to(device), mode=args.label_mode).cpu()
        save_volume(warped_seg[0], fixed, args.out / "warped_seg.nii.gz", kind="label")
        spacing = fixed.affine[:fixed.dims, :fixed.dims].norm(dim=0).tolist()
        per_label = metrics.dice_per_label(fixed_seg.data, warped_seg)
        report.update(dice=float(sum(per_label.values()) / max(len(per_label), 1)),
                      dice_per_label={str(k): v for k, v in per_label.items()},
                      hd95=metrics.hd95(fixed_seg.data, warped_seg, spacing))
    (args.out / "metrics.json").write_text(json.dumps(report, indent=2))
    return report


COMMANDS = {"register": (build_register_parser, run_register)}
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def first_reason(message: str) -> str:
    """The reason in a jsonargparse union error ("Does not validate against any of the Union
    subtypes ... - <reason>"): the one that is not about ``None``; other messages unchanged."""
    if "Does not validate against any of the Union subtypes" not in message:
        return message
    reasons = [line.strip()[2:] for line in message.splitlines() if line.strip().startswith("- ")]
    reasons = [reason for reason in reasons if "NoneType" not in reason]
    return reasons[0] if reasons else message


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lightning-reg`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LIGHTNING_COMMANDS:
        from .trainer_cli import run_lightning  # noqa: I001 (Lightning loads slowly: only for these commands)
        try:
            run_lightning(argv)
        except (InputError, ValueError) as error:  # our checks of the user's settings and data
            print(f"lightning-reg {argv[0]}: error: {first_reason(str(error))}", file=sys.stderr)
            return EXIT_BAD_INPUT
        return 0
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        known = ", ".join([*LIGHTNING_COMMANDS, *COMMANDS])
        if argv and argv[0] not in ("-h", "--help"):
            print(f"lightning-reg: error: unknown command {argv[0]!r}; commands: {known}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"usage: lightning-reg COMMAND [options]\ncommands: {known}\n"
              "  fit        train features through the solver (lightning-reg fit --help)\n"
              "  validate   evaluate a model on the validation pairs\n"
              "  test       evaluate on the test pairs; writes test_metrics.csv into the run folder\n"
              "  predict    register the prediction pairs with a model\n"
              "  register   register two NIfTI files (lightning-reg register --help)")
        return 0 if argv else EXIT_BAD_INPUT
    build, run = COMMANDS[argv[0]]
    args = build().parse_args(argv[1:])
    try:
        report = run(args)
    except (InputError, ValueError) as error:
        print(f"lightning-reg {argv[0]}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps({k: v for k, v in report.items() if k != "dice_per_label"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
