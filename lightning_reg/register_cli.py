"""``lightning-reg register``: register two NIfTI files, classically on the intensities or with a
trained model (``--checkpoint``), optionally with a label prompt."""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from . import metrics
from .cli import OneLineParser
from .io import InputError, Volume, load_volume, save_itk_displacement, save_volume
from .solver import SIMILARITIES, TRANSFORMS, RegistrationResult, label_prompt, register
from .solver.regularizers import REGULARIZERS


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
    parser.add_argument("--scales", type=float, nargs="+", help="coarse to fine; default 4 2 1")
    parser.add_argument("--iterations", type=int, nargs="+", help="one per scale; default 200 100 50")
    parser.add_argument("--init", choices=["none", "rigid", "affine"],
                        help="run a linear registration first, then --transform from it (as ANTs); default none")
    parser.add_argument("--learning-rate", type=float, help="step: voxels (deformable) or frame units (linear)")
    parser.add_argument("--window", type=int, help="lncc window, voxels; default 7")
    parser.add_argument("--regularizer", choices=["none", *REGULARIZERS], help="default none")
    parser.add_argument("--regularizer-weight", type=float)
    parser.add_argument("--tolerance", type=float, help="early stop: relative energy change; default 1e-6")
    parser.add_argument("--prompt-labels", type=int, nargs="+", metavar="LABEL",
                        help="label values to align as well (a label-fidelity term; needs both --*-seg)")
    parser.add_argument("--prompt-weight", type=float, default=1.0, help="weight of the prompt term")
    parser.add_argument("--label-mode", default="nearest", choices=["nearest", "linear"],
                        help="label warping: nearest voxel or linear one-hot")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=int, help="CPU threads for torch")
    parser.add_argument("--out", required=True, type=Path, help="output folder")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
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
    if args.scales and args.iterations and len(args.scales) != len(args.iterations):
        raise InputError(f"--scales has {len(args.scales)} values but --iterations has {len(args.iterations)}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("--device cuda asked for, but torch sees no CUDA device; use --device cpu")
    if args.out.exists() and not args.overwrite:
        raise InputError(f"output folder {args.out} exists; pass --overwrite to replace it")
    if args.prompt_weight < 0:
        raise InputError(f"--prompt-weight must be >= 0, got {args.prompt_weight}")


def _progress(total: int, quiet: bool):
    bar = tqdm(total=total, disable=quiet, unit="it", dynamic_ncols=True, file=sys.stderr)

    def callback(scale_index: int, iteration: int, energies: torch.Tensor) -> None:
        bar.set_postfix(scale=scale_index, energy=f"{float(energies.mean()):.5f}", refresh=False)
        bar.update(1)

    return bar, callback


def _solve_classical(args: argparse.Namespace, fixed: Volume, moving: Volume, fixed_seg: Volume | None,
                     moving_seg: Volume | None, device: torch.device) -> tuple[RegistrationResult, dict]:
    """Classical registration of the intensities; returns the result and the settings used."""
    options = {key: default if getattr(args, key) is None else getattr(args, key) for key, default in CLASSICAL.items()}
    if len(options["scales"]) != len(options["iterations"]):
        raise InputError(f"--scales {options['scales']} and --iterations {options['iterations']} differ in length")
    prompts = []
    if args.prompt_labels:
        prompts = [label_prompt(fixed_seg.data.to(device), moving_seg.data.to(device), args.prompt_labels,
                                args.prompt_weight)]
    common = dict(similarity=options["similarity"], scales=options["scales"], iterations=options["iterations"],
                  fixed_affine=fixed.affine, moving_affine=moving.affine, tolerance=options["tolerance"],
                  prompts=prompts,
                  similarity_options={"window": options["window"]} if options["similarity"] == "lncc" else None)
    linear = options["init"] != "none"
    bar, callback = _progress(sum(options["iterations"]) * (2 if linear else 1), args.quiet)
    fixed_data, moving_data = fixed.data.to(device), moving.data.to(device)
    init = register(fixed_data, moving_data, transform=options["init"], callback=callback, **common) if linear else None
    regularizer = None if options["regularizer"] == "none" else options["regularizer"]
    result = register(fixed_data, moving_data, transform=options["transform"], init=init, callback=callback,
                      regularizer=regularizer, regularizer_weight=options["regularizer_weight"],
                      transform_options={"learning_rate": args.learning_rate} if args.learning_rate else {},
                      **common)
    bar.total = bar.n  # pairs may stop early: end the bar where the solver ended
    bar.close()
    return result, {key: options[key] for key in ("transform", "similarity", "init", "scales", "iterations")}


def _solve_learned(args: argparse.Namespace, fixed: Volume, moving: Volume, fixed_seg: Volume | None,
                   moving_seg: Volume | None, device: torch.device) -> tuple[RegistrationResult, dict]:
    """Registration on the features of the ``--checkpoint`` model; returns the result and its settings."""
    from .learned import check_model_input, load_model, register_with_model, settings_with  # noqa: I001 (Lightning loads slowly)
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
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    start = time.perf_counter()
    solve = _solve_learned if args.checkpoint else _solve_classical
    result, used = solve(args, fixed, moving, fixed_seg, moving_seg, device)
    seconds = time.perf_counter() - start

    if args.out.exists():
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True)
    moving_data = moving.data.to(device)
    save_volume(result.warp(moving_data)[0], fixed, args.out / "warped.nii.gz")
    save_itk_displacement(result.displacement_mm()[0], fixed, args.out / "warp.nii.gz")
    determinant = result.jacobian_determinant()
    report = {**used, "checkpoint": str(args.checkpoint) if args.checkpoint else None,
              "prompt_labels": args.prompt_labels or [], "prompt_weight": args.prompt_weight,
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
