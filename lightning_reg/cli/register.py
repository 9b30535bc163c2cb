"""``lightning-reg register``: register two NIfTI files, classically on the intensities or with a
trained model (``--checkpoint``), optionally with a label prompt."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from .. import metrics
from ..errors import InputError, OneLineParser
from ..io import Volume, default_max_voxels, load_volume, save_itk_displacement, save_volume
from ..output_files import OutputFolder, write_text
from ..solver import (
    SIMILARITIES,
    TRANSFORMS,
    RegistrationLayer,
    RegistrationResult,
    field_of_view_overlap,
    label_prompt,
    register,
)
from ..solver.checks import check_number
from ..solver.regularizers import REGULARIZERS
from .parsing import count, device_option, finite_float, positive_int

#: below this share of the fixed field of view inside the moving one, register warns
LOW_OVERLAP = 0.5


def build_parser(prog: str = "lightning-reg register") -> argparse.ArgumentParser:
    parser = OneLineParser(prog=prog, description="Register a moving NIfTI image to a fixed one: classical "
                           "registration of the intensities, or with --checkpoint on a trained model's features. "
                           "Solver options left out take the defaults shown, or with --checkpoint the model's "
                           "evaluation settings.")
    parser.add_argument("--fixed", required=True, type=Path, help="fixed image (.nii/.nii.gz)")
    parser.add_argument("--moving", required=True, type=Path, help="moving image (.nii/.nii.gz)")
    parser.add_argument("--fixed-seg", type=Path, help="fixed label map, for Dice/HD95 and prompts")
    parser.add_argument("--moving-seg", type=Path, help="moving label map, warped into fixed space")
    parser.add_argument("--checkpoint", type=Path, help="a model trained with lightning-reg fit (.ckpt)")
    parser.add_argument("--transform", choices=list(TRANSFORMS), help="default greedy")
    parser.add_argument("--similarity", choices=list(SIMILARITIES), help="default lncc")
    parser.add_argument("--scales", type=finite_float, nargs="+", help="coarse to fine; default 4 2 1")
    parser.add_argument("--iterations", type=count, nargs="+", help="one per scale; default 200 100 50")
    parser.add_argument("--init", choices=["none", "rigid", "affine"],
                        help="run a linear registration first, then --transform from it (as ANTs); default none")
    parser.add_argument("--learning-rate", type=finite_float,
                        help="step: voxels (deformable) or frame units (linear); > 0")
    parser.add_argument("--window", type=positive_int, help="lncc window, voxels; default 7")
    parser.add_argument("--regularizer", choices=["none", *REGULARIZERS], help="default none")
    parser.add_argument("--regularizer-weight", type=finite_float, help="weight of --regularizer; needed with it")
    parser.add_argument("--tolerance", type=finite_float, help="early stop: relative energy change; default 1e-6")
    parser.add_argument("--prompt-labels", type=int, nargs="+", metavar="LABEL",
                        help="label values to align as well (a label-fidelity term; needs both --*-seg)")
    parser.add_argument("--prompt-weight", type=finite_float, default=1.0, help="weight of the prompt term")
    parser.add_argument("--label-mode", default="nearest", choices=["nearest", "linear"],
                        help="label warping: nearest voxel or linear one-hot")
    parser.add_argument("--device", default="cpu", type=device_option, help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=positive_int, help="CPU threads for torch")
    parser.add_argument("--max-voxels", type=positive_int, default=default_max_voxels(),
                        help="refuse images with more voxels x channels than this, read from the header before "
                             "decompressing (default %(default)s: 3/4 of this machine's memory at about 300 bytes "
                             "a voxel)")
    parser.add_argument("--ignore-header", action="store_true",
                        help="use only the voxel spacing of the headers (images centred, no rotation): for damaged "
                             "headers (singular or non-finite affines) or images the headers place apart")
    parser.add_argument("--out", required=True, type=Path, help="output folder (a new one, or one lightning-reg "
                        "wrote, with --overwrite)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an --out folder that lightning-reg wrote before, once the new results are "
                             "complete (never the working folder or a folder holding the inputs)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


#: ``register`` without a checkpoint: classical registration of the intensities
CLASSICAL = {"transform": "greedy", "similarity": "lncc", "scales": [4, 2, 1], "iterations": [200, 100, 50],
             "init": "none", "window": 7, "regularizer": "none", "regularizer_weight": 0.0, "tolerance": 1e-6}


def _check_pair(image: Volume, seg: Volume | None, role: str) -> None:
    if seg is not None and seg.shape != image.shape:
        raise InputError(f"{role} seg {seg.path} has shape {seg.shape} but {role} image has {image.shape}")


def _load_inputs(args: argparse.Namespace) -> tuple[Volume, Volume, Volume | None, Volume | None]:
    if (args.fixed_seg is None) != (args.moving_seg is None):
        raise InputError("give both --fixed-seg and --moving-seg, or neither")
    if args.prompt_labels and args.fixed_seg is None:
        raise InputError("--prompt-labels needs the label maps of both images: give --fixed-seg and --moving-seg")
    read = dict(max_voxels=args.max_voxels, ignore_header=args.ignore_header)
    fixed, moving = load_volume(args.fixed, **read), load_volume(args.moving, **read)
    if fixed.dims != moving.dims:
        raise InputError(f"fixed image is {fixed.dims}D but moving image is {moving.dims}D")
    if fixed.data.shape[1] != moving.data.shape[1]:
        raise InputError(f"fixed has {fixed.data.shape[1]} channels, moving {moving.data.shape[1]}")
    fixed_seg = load_volume(args.fixed_seg, "label", max_voxels=args.max_voxels) if args.fixed_seg else None
    moving_seg = load_volume(args.moving_seg, "label", max_voxels=args.max_voxels) if args.moving_seg else None
    _check_pair(fixed, fixed_seg, "fixed")
    _check_pair(moving, moving_seg, "moving")
    return fixed, moving, fixed_seg, moving_seg


def _output(args: argparse.Namespace) -> OutputFolder:
    return OutputFolder(args.out, args.overwrite, [args.fixed, args.moving, args.fixed_seg, args.moving_seg,
                                                  args.checkpoint])


def _classical_options(args: argparse.Namespace) -> dict:
    """The options of classical registration: the user's, else :data:`CLASSICAL`."""
    return {key: default if getattr(args, key) is None else getattr(args, key) for key, default in CLASSICAL.items()}


def _check_options(args: argparse.Namespace) -> None:
    """Everything that can be checked before reading an image: option combinations, the output
    folder, and (without a checkpoint) the solver settings, by building the solver from them."""
    if args.scales and args.iterations and len(args.scales) != len(args.iterations):
        raise InputError(f"--scales has {len(args.scales)} values but --iterations has {len(args.iterations)}")
    check_number("--prompt-weight", args.prompt_weight, 0)
    if args.regularizer not in (None, "none") and args.regularizer_weight is None and not args.checkpoint:
        raise InputError(f"--regularizer {args.regularizer} needs its weight: give --regularizer-weight W (e.g. 0.1)")
    _output(args).check()
    if not args.checkpoint:  # the solver checks its own settings as it is built
        options = _classical_options(args)
        RegistrationLayer(options["transform"], options["similarity"], options["scales"], options["iterations"],
                          regularizer=None if options["regularizer"] == "none" else options["regularizer"],
                          regularizer_weight=options["regularizer_weight"], tolerance=options["tolerance"],
                          transform_options=_transform_options(args), similarity_options=_similarity_options(options))


def _transform_options(args: argparse.Namespace) -> dict:
    return {} if args.learning_rate is None else {"learning_rate": args.learning_rate}


def _similarity_options(options: dict) -> dict | None:
    return {"window": options["window"]} if options["similarity"] == "lncc" else None


def _check_overlap(fixed: Volume, moving: Volume) -> None:
    """No overlap in world space is an error (nothing to register); little overlap, a warning."""
    overlap = field_of_view_overlap(fixed.shape, fixed.affine, moving.shape, moving.affine)
    if overlap == 0:
        centres = [(volume.affine[:volume.dims, :volume.dims] @ torch.tensor([(n - 1) / 2 for n in volume.shape],
                   dtype=torch.float64) + volume.affine[:volume.dims, volume.dims]).tolist() for volume in (fixed, moving)]
        shown = [", ".join(f"{value:.0f}" for value in centre) for centre in centres]
        raise InputError(f"{fixed.path} and {moving.path} do not overlap in world space: their headers put their "
                         f"centres at ({shown[0]}) and ({shown[1]}) mm. Pass --ignore-header to centre both, or "
                         f"fix the headers")
    if overlap < LOW_OVERLAP:
        print(f"warning: only {overlap:.0%} of {fixed.path}'s field of view lies inside {moving.path}'s (from "
              f"their headers); if they should overlap more, check the headers or pass --ignore-header",
              file=sys.stderr)


def _check_result(result: RegistrationResult, learned: bool) -> None:
    if not bool(torch.isfinite(result.grid).all()):
        cause = ("the model's features are too large (a checkpoint of a diverged training run?)" if learned
                 else "try a smaller --learning-rate or a --regularizer")
        raise InputError(f"the solver diverged: its warp is not finite; {cause}")


def _progress(total: int, quiet: bool):
    bar = tqdm(total=total, disable=quiet, unit="it", dynamic_ncols=True, file=sys.stderr)

    def callback(scale_index: int, iteration: int, energies: torch.Tensor) -> None:
        bar.set_postfix(scale=scale_index, energy=f"{float(energies.mean()):.5f}", refresh=False)
        bar.update(1)

    return bar, callback


def _solve_classical(args: argparse.Namespace, fixed: Volume, moving: Volume, fixed_seg: Volume | None,
                     moving_seg: Volume | None, device: torch.device) -> tuple[RegistrationResult, dict]:
    """Classical registration of the intensities; returns the result and the settings used."""
    options = _classical_options(args)
    if len(options["scales"]) != len(options["iterations"]):
        raise InputError(f"--scales {options['scales']} and --iterations {options['iterations']} differ in length")
    prompts = []
    if args.prompt_labels:
        prompts = [label_prompt(fixed_seg.data.to(device), moving_seg.data.to(device), args.prompt_labels,
                                args.prompt_weight)]
    common = dict(similarity=options["similarity"], scales=options["scales"], iterations=options["iterations"],
                  fixed_affine=fixed.affine, moving_affine=moving.affine, tolerance=options["tolerance"],
                  prompts=prompts, similarity_options=_similarity_options(options))
    linear = options["init"] != "none"
    bar, callback = _progress(sum(options["iterations"]) * (2 if linear else 1), args.quiet)
    fixed_data, moving_data = fixed.data.to(device), moving.data.to(device)
    init = register(fixed_data, moving_data, transform=options["init"], callback=callback, **common) if linear else None
    regularizer = None if options["regularizer"] == "none" else options["regularizer"]
    result = register(fixed_data, moving_data, transform=options["transform"], init=init, callback=callback,
                      regularizer=regularizer, regularizer_weight=options["regularizer_weight"],
                      transform_options=_transform_options(args), **common)
    bar.total = bar.n  # pairs may stop early: end the bar where the solver ended
    bar.close()
    return result, {key: options[key] for key in ("transform", "similarity", "init", "scales", "iterations")}


def _solve_learned(args: argparse.Namespace, fixed: Volume, moving: Volume, fixed_seg: Volume | None,
                   moving_seg: Volume | None, device: torch.device) -> tuple[RegistrationResult, dict]:
    """Registration on the features of the ``--checkpoint`` model; returns the result and its settings."""
    from .register_model import check_model_input, load_model, register_with_model, settings_with  # noqa: I001 (Lightning loads slowly)
    model = load_model(args.checkpoint, device)
    check_model_input(model, fixed)
    linear, transform = model.eval_solver.stages()
    if args.init is not None:
        linear = None if args.init == "none" else args.init
    transform = args.transform or transform
    settings = settings_with(
        model, transform=f"{linear}+{transform}" if linear else transform, similarity=args.similarity,
        scales=args.scales, iterations=args.iterations, learning_rate=args.learning_rate,
        regularizer=args.regularizer, regularizer_weight=args.regularizer_weight, tolerance=args.tolerance,
        similarity_options={"window": args.window} if args.window else None,
        prompt_labels=args.prompt_labels, prompt_weight=args.prompt_weight if args.prompt_labels else None)
    result = register_with_model(model, settings, fixed, moving, fixed_seg, moving_seg, device)
    linear, transform = settings.stages()
    used = {"transform": transform, "similarity": settings.similarity, "init": linear or "none",
            "scales": settings.scales or model.network.scales, "iterations": list(settings.iterations)}
    return result, used


def run(args: argparse.Namespace) -> dict:
    """Register, write the outputs into ``args.out``, return the metrics."""
    _check_options(args)
    fixed, moving, fixed_seg, moving_seg = _load_inputs(args)
    _check_overlap(fixed, moving)
    if args.threads:
        torch.set_num_threads(args.threads)
    start = time.perf_counter()
    solve = _solve_learned if args.checkpoint else _solve_classical
    result, used = solve(args, fixed, moving, fixed_seg, moving_seg, args.device)
    seconds = time.perf_counter() - start
    _check_result(result, learned=bool(args.checkpoint))

    determinant = result.jacobian_determinant()
    report = {**used, "checkpoint": str(args.checkpoint) if args.checkpoint else None,
              "prompt_labels": args.prompt_labels or [], "prompt_weight": args.prompt_weight,
              "folding_percent": metrics.folding_percent(determinant),
              "sdlogj": metrics.sdlogj(determinant), "seconds": seconds}
    with _output(args).staged("lightning-reg register") as folder:
        save_volume(result.warp(moving.data.to(args.device))[0], fixed, folder / "warped.nii.gz")
        save_itk_displacement(result.displacement_mm()[0], fixed, folder / "warp.nii.gz")
        if fixed_seg is not None:
            warped_seg = result.warp_labels(moving_seg.data.to(args.device), mode=args.label_mode).cpu()
            save_volume(warped_seg[0], fixed, folder / "warped_seg.nii.gz", kind="label")
            spacing = fixed.affine[:fixed.dims, :fixed.dims].norm(dim=0).tolist()
            per_label = metrics.dice_per_label(fixed_seg.data, warped_seg)
            report.update(dice=float(sum(per_label.values()) / max(len(per_label), 1)),
                          dice_per_label={str(k): v for k, v in per_label.items()},
                          hd95=metrics.hd95(fixed_seg.data, warped_seg, spacing))
        write_text(folder / "metrics.json", json.dumps(report, indent=2))
    return report
