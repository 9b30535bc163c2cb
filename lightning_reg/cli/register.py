"""``lightning-reg register``: register two NIfTI files, classically on the intensities or with a
trained model (``--checkpoint``), optionally with a label prompt."""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import shlex
import sys
from concurrent.futures import ThreadPoolExecutor
from importlib.metadata import version
from pathlib import Path

import torch

from ..errors import InputError, OneLineParser
from ..evaluation.metrics import dice_per_label, hd95, target_registration_error
from ..evaluation.rows import pair_rows
from ..files.ants import save_ants_transforms
from ..files.landmarks import read_landmark_pair
from ..files.nifti import Volume, default_max_voxels, load_volume, save_itk_displacement, save_volume
from ..files.output_folder import OutputFolder, write_text
from ..models import BUNDLED, resolve_checkpoint
from ..solver import (
    CLASSICAL,
    FAST,
    PRESETS,
    RegistrationLayer,
    RegistrationResult,
    SolverOptions,
    choices,
    field_of_view_overlap,
    label_prompt,
    register,
    stages,
)
from ..solver.checks import check_number, level_iterations
from ..solver.inverse import INVERSE_CONVERGED_VOXELS, InverseField
from ..solver.options import option_help
from ..solver.result import LABEL_MODE
from ..solver.similarity import LNCC_WINDOW
from ..solver.spatial import voxel_spacing
from .parsing import count, device_option, finite_float, positive_int
from .progress import Phases

#: below this share of the fixed field of view inside the moving one, register warns
LOW_OVERLAP = 0.5


def build_parser(prog: str = "lightning-reg register") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Register a moving NIfTI image to a fixed one: classical "
        "registration of the intensities, or with --checkpoint on a trained model's features. "
        "Solver options left out take the defaults shown, or with --checkpoint the model's "
        "evaluation settings.",
    )
    parser.add_argument("--fixed", required=True, type=Path, help="fixed image (.nii/.nii.gz)")
    parser.add_argument("--moving", required=True, type=Path, help="moving image (.nii/.nii.gz)")
    parser.add_argument("--fixed-seg", type=Path, help="fixed label map, for Dice/HD95 and prompts")
    parser.add_argument("--moving-seg", type=Path, help="moving label map, warped into fixed space")
    parser.add_argument(
        "--fixed-mask",
        type=Path,
        help="cost-function mask of the fixed image (nonzero inside, "
        "same grid): the similarity counts only voxels inside it, as ANTs' -x",
    )
    parser.add_argument(
        "--moving-mask",
        type=Path,
        help="cost-function mask of the moving image (nonzero inside, "
        "same grid): fixed voxels mapped outside it are not compared (a lesion, a cut field of view)",
    )
    parser.add_argument(
        "--fixed-landmarks",
        type=Path,
        help="CSV of fixed-image landmarks (x, y[, z] columns, RAS "
        "mm), for the target registration error; needs --moving-landmarks",
    )
    parser.add_argument(
        "--moving-landmarks", type=Path, help="CSV of the corresponding moving-image landmarks, same order"
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        help=f"a model trained with lightning-reg fit (.ckpt), or a bundled model by name: {', '.join(BUNDLED)}",
    )
    _solver_flag(parser, "transform", choices=choices("transform"))
    _solver_flag(parser, "similarity", choices=choices("similarity"))
    _solver_flag(parser, "scales", type=finite_float, nargs="+")
    _solver_flag(parser, "iterations", type=count, nargs="+", extra=f"--preset fast: {_shown(FAST.iterations)}")
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        default="default",
        help="classical settings: default, or fast (about a third of the time for about 0.01 less "
        "Dice on brain MRI, benchmarks/pareto.py); options given explicitly override it",
    )
    parser.add_argument(
        "--init",
        choices=["none", *choices("linear")],
        help=f"{option_help('linear')} Default: none",
    )
    parser.add_argument(
        "--learning-rate",
        type=finite_float,
        help="step: voxels (deformable) or frame units (linear); > 0; default: the transform's own",
    )
    parser.add_argument("--window", type=positive_int, help=f"lncc window, voxels; default {LNCC_WINDOW}")
    parser.add_argument(
        "--feature-channels",
        type=positive_int,
        help="with --checkpoint: solve on this many "
        "principal components of the model's features (fewer: a faster solve); default: the "
        "model's own setting (its card says which)",
    )
    parser.add_argument(
        "--regularizer", choices=["none", *choices("regularizer")], help=f"{option_help('regularizer')} Default: none"
    )
    parser.add_argument("--regularizer-weight", type=finite_float, help="weight of --regularizer; needed with it")
    _solver_flag(parser, "tolerance", type=finite_float)
    _solver_flag(parser, "optimizer", choices=choices("optimizer"))
    _solver_flag(parser, "interpolation", choices=choices("interpolation"))
    parser.add_argument(
        "--prompt-labels",
        type=int,
        nargs="+",
        metavar="LABEL",
        help="label values to align as well (a label-fidelity term; needs both --*-seg)",
    )
    parser.add_argument("--prompt-weight", type=finite_float, default=1.0, help="weight of the prompt term")
    parser.add_argument(
        "--label-mode",
        default=LABEL_MODE,
        choices=["nearest", "linear"],
        help="label warping, for warped_seg and the metrics: nearest voxel, or linear one-hot and "
        "the most likely label (as ANTs' GenericLabel, and as lightning-reg test); default "
        "%(default)s",
    )
    parser.add_argument(
        "--inverse-warp",
        default="write",
        choices=["write", "converged", "skip"],
        help="1InverseWarp.nii.gz: write it (with a warning when the inversion did not converge), "
        "write it only when it converged, or skip it (and its time); default %(default)s",
    )
    parser.add_argument("--device", default="cpu", type=device_option, help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=positive_int, help="CPU threads for torch")
    parser.add_argument(
        "--max-voxels",
        type=positive_int,
        default=default_max_voxels(),
        help="refuse images with more voxels x channels than this, read from the header before "
        "decompressing (default %(default)s: 3/4 of this machine's memory at about 300 bytes "
        "a voxel)",
    )
    parser.add_argument(
        "--ignore-header",
        action="store_true",
        help="use only the voxel spacing of the headers (images centred, no rotation): for damaged "
        "headers (singular or non-finite affines) or images the headers place apart",
    )
    parser.add_argument(
        "--out",
        required=True,
        type=Path,
        help="output folder (a new one, or one lightning-reg wrote, with --overwrite)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an --out folder that lightning-reg wrote before, once the new results are "
        "complete (never the working folder or a folder holding the inputs)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress: only warnings, errors and the last line")
    return parser


def _shown(value) -> str:
    return (
        " ".join(f"{item:g}" if isinstance(item, float) else str(item) for item in value)
        if isinstance(value, tuple)
        else str(value)
    )


def _solver_flag(parser: argparse.ArgumentParser, name: str, extra: str = "", **kwargs) -> None:
    """``--name`` of a solver option: its help from ``SolverOptions``, the classical default shown."""
    default = getattr(CLASSICAL, name)
    shown = "the optimizer's (above)" if default is None else _shown(default)
    text = f"{option_help(name)} Default: {shown}" + (f" ({extra})" if extra else "")
    parser.add_argument(f"--{name.replace('_', '-')}", help=text.replace("%", "%%"), **kwargs)


def _check_pair(image: Volume, seg: Volume | None, role: str) -> None:
    if seg is not None and seg.shape != image.shape:
        raise InputError(f"{role} seg {seg.path} has shape {seg.shape} but {role} image has {image.shape}")


def _load_inputs(args: argparse.Namespace) -> tuple[Volume, Volume, Volume | None, Volume | None]:
    if (args.fixed_seg is None) != (args.moving_seg is None):
        raise InputError("give both --fixed-seg and --moving-seg, or neither")
    if (args.fixed_landmarks is None) != (args.moving_landmarks is None):
        raise InputError("give both --fixed-landmarks and --moving-landmarks, or neither")
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


def _load_masks(args: argparse.Namespace, fixed: Volume, moving: Volume) -> dict:
    """``{"fixed_mask": [1, 1, *S] or None, "moving_mask": ...}`` from ``--fixed-mask``/``--moving-mask``."""
    masks = {}
    for role, path, image in (("fixed", args.fixed_mask, fixed), ("moving", args.moving_mask, moving)):
        mask = None if path is None else load_volume(path, "label", max_voxels=args.max_voxels)
        if mask is not None:
            if mask.shape != image.shape:
                raise InputError(f"--{role}-mask {path} has shape {mask.shape} but the {role} image has {image.shape}")
            if not bool((mask.data != 0).any()):
                raise InputError(f"--{role}-mask {path} is empty (no nonzero voxel): nothing would be compared")
        masks[f"{role}_mask"] = None if mask is None else (mask.data != 0).float()
    return masks


def _output(args: argparse.Namespace) -> OutputFolder:
    return OutputFolder(
        args.out,
        args.overwrite,
        [
            args.fixed,
            args.moving,
            args.fixed_seg,
            args.moving_seg,
            args.checkpoint,
            args.fixed_landmarks,
            args.moving_landmarks,
            args.fixed_mask,
            args.moving_mask,
        ],
    )


def _classical_options(args: argparse.Namespace) -> SolverOptions:
    """The options of classical registration: the user's, else the preset's."""
    given = {
        "transform": args.transform,
        "similarity": args.similarity,
        "scales": args.scales,
        "iterations": args.iterations,
        "tolerance": args.tolerance,
        "optimizer": args.optimizer,
        "interpolation": args.interpolation,
    }
    changes = {key: value for key, value in given.items() if value is not None}
    if args.init is not None:
        changes["linear"] = None if args.init == "none" else args.init
    similarity = changes.get("similarity", PRESETS[args.preset].similarity)
    return PRESETS[args.preset].changed(
        **changes,
        regularizer=None if args.regularizer in (None, "none") else args.regularizer,
        regularizer_weight=args.regularizer_weight or 0.0,
        transform_options={} if args.learning_rate is None else {"learning_rate": args.learning_rate},
        similarity_options={"window": args.window} if args.window and similarity == "lncc" else {},
    )


def _check_options(args: argparse.Namespace) -> None:
    """Everything that can be checked before reading an image: option combinations and (without a
    checkpoint) the solver settings, by building the solver from them."""
    check_number("--prompt-weight", args.prompt_weight, 0)
    if args.feature_channels is not None and not args.checkpoint:
        raise InputError(
            "--feature-channels reduces a --checkpoint model's features; classical registration "
            "solves on the image itself"
        )
    if args.checkpoint and args.preset != "default":
        raise InputError(
            f"--preset {args.preset} sets the classical solver's iterations; a --checkpoint model has its "
            f"own (give --iterations to change them)"
        )
    if args.regularizer not in (None, "none") and args.regularizer_weight is None and not args.checkpoint:
        raise InputError(f"--regularizer {args.regularizer} needs its weight: give --regularizer-weight W (e.g. 0.1)")
    if not args.checkpoint:  # the solver checks its own settings as they are built
        _classical_options(args)


def _check_overlap(fixed: Volume, moving: Volume) -> None:
    """No overlap in world space is an error (nothing to register); little overlap, a warning."""
    overlap = field_of_view_overlap(fixed.shape, fixed.affine, moving.shape, moving.affine)
    if overlap == 0:
        centres = [
            (
                volume.affine[: volume.dims, : volume.dims]
                @ torch.tensor([(n - 1) / 2 for n in volume.shape], dtype=torch.float64)
                + volume.affine[: volume.dims, volume.dims]
            ).tolist()
            for volume in (fixed, moving)
        ]
        shown = [", ".join(f"{value:.0f}" for value in centre) for centre in centres]
        raise InputError(
            f"{fixed.path} and {moving.path} do not overlap in world space: their headers put their "
            f"centres at ({shown[0]}) and ({shown[1]}) mm. Pass --ignore-header to centre both, or "
            f"fix the headers"
        )
    if overlap < LOW_OVERLAP:
        print(
            f"warning: only {overlap:.0%} of {fixed.path}'s field of view lies inside {moving.path}'s (from "
            f"their headers); if they should overlap more, check the headers or pass --ignore-header",
            file=sys.stderr,
        )


def _check_result(result: RegistrationResult, learned: bool) -> None:
    if not bool(torch.isfinite(result.grid).all()):
        cause = (
            "the model's features are too large (a checkpoint of a diverged training run?)"
            if learned
            else "try a smaller --learning-rate or a --regularizer"
        )
        raise InputError(f"the solver diverged: its warp is not finite; {cause}")


def _solve_classical(
    args: argparse.Namespace,
    fixed: Volume,
    moving: Volume,
    fixed_seg: Volume | None,
    moving_seg: Volume | None,
    device: torch.device,
    masks: dict,
    phases: Phases,
) -> tuple[RegistrationResult, dict]:
    """Classical registration of the intensities; returns the result and every setting it used."""
    options = _classical_options(args)
    prompts = []
    if args.prompt_labels:
        prompts = [
            label_prompt(fixed_seg.data.to(device), moving_seg.data.to(device), args.prompt_labels, args.prompt_weight)
        ]
    iterations = level_iterations(options.iterations, len(options.scales))
    described = RegistrationLayer(options).describe()
    progress = phases.solver_progress(sum(iterations) * (2 if options.linear else 1))
    on_device = {name: None if mask is None else mask.to(device) for name, mask in masks.items()}
    with phases.phase("registration", "registered"):
        result = register(
            fixed.data.to(device),
            moving.data.to(device),
            options,
            fixed_affine=fixed.affine,
            **on_device,
            moving_affine=moving.affine,
            prompts=prompts,
            callback=progress,
        )
        progress.close()
    return result, described


def _solve_learned(
    args: argparse.Namespace,
    fixed: Volume,
    moving: Volume,
    fixed_seg: Volume | None,
    moving_seg: Volume | None,
    device: torch.device,
    masks: dict,
    phases: Phases,
) -> tuple[RegistrationResult, dict]:
    """Registration on the features of the ``--checkpoint`` model; returns the result and every
    setting it used."""
    from .register_model import (  # noqa: I001 (Lightning loads slowly)
        check_model_input,
        load_model,
        model_batch,
        settings_with,
        warn_thick_slices,
    )

    with phases.phase("model", None):
        model = load_model(args.checkpoint, device)
    check_model_input(model, fixed)
    warn_thick_slices([fixed, moving])
    linear, transform = model.eval_solver.stages()
    settings = settings_with(
        model,
        transform=args.transform or transform,
        linear=args.init or linear or "none",
        similarity=args.similarity,
        scales=args.scales,
        iterations=args.iterations,
        learning_rate=args.learning_rate,
        regularizer=args.regularizer,
        regularizer_weight=args.regularizer_weight,
        tolerance=args.tolerance,
        optimizer=args.optimizer,
        interpolation=args.interpolation,
        similarity_options={"window": args.window} if args.window else None,
        prompt_labels=args.prompt_labels,
        prompt_weight=args.prompt_weight if args.prompt_labels else None,
        feature_channels=args.feature_channels,
    )
    described = settings.layer().describe()
    described.update(
        scales=list(settings.scales or model.network.scales),
        iterations=list(settings.iterations),
        network=type(model.network).__name__,
        feature_channels=settings.feature_channels,
    )
    batch = model_batch(fixed, moving, fixed_seg, moving_seg, device, masks)
    progress = phases.solver_progress(sum(settings.iterations) * (2 if settings.stages()[0] else 1))
    with torch.no_grad():
        network = type(model.network).__name__
        with phases.phase("features", f"computed the features ({network})", f"computing the features ({network}) ..."):
            features = model.features(batch["fixed"], batch["moving"])
        with phases.phase("registration", "registered"):
            result = model.solve(batch, features, settings, callback=progress)[-1]
            progress.close()
    return result, described


def sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


#: the input files of a registration, by their option
INPUT_FILES = (
    "fixed",
    "moving",
    "fixed_seg",
    "moving_seg",
    "fixed_mask",
    "moving_mask",
    "fixed_landmarks",
    "moving_landmarks",
)


def provenance(args: argparse.Namespace) -> dict:
    """How a result was made, as far as it is known before the solve: the command line, the versions,
    the machine's threads, each input file (and the checkpoint) with its SHA-256."""
    inputs = {
        name: {"path": str(getattr(args, name)), "sha256": sha256(getattr(args, name))}
        for name in INPUT_FILES
        if getattr(args, name) is not None
    }
    path = resolve_checkpoint(args.checkpoint) if args.checkpoint else None
    if path is not None and path.is_file():  # else loading it says what is wrong
        inputs["checkpoint"] = {"path": str(path), "given": str(args.checkpoint), "sha256": sha256(path)}
    return {
        "command": shlex.join(getattr(args, "command_line", None) or ["lightning-reg", "register"]),
        "versions": {name: version(name) for name in ("lightning_reg", "torch", "nibabel", "numpy")}
        | {"python": platform.python_version()},
        "machine": {"device": str(args.device), "threads": torch.get_num_threads(), "platform": platform.platform()},
        "inputs": inputs,
    }


def _dice_before(
    fixed: Volume, moving: Volume, fixed_seg: Volume, moving_seg: Volume, label_mode: str, device: torch.device
) -> dict:
    """Dice and HD95 of the label maps as the headers alone align them (no registration)."""
    if fixed.data.shape == moving.data.shape and torch.equal(fixed.affine, moving.affine):
        warped = moving_seg.data  # one grid: the headers align them voxel for voxel, nothing to resample
    else:
        header = register(
            fixed.data.to(device),
            moving.data.to(device),
            iterations=0,
            fixed_affine=fixed.affine,
            moving_affine=moving.affine,
        )
        warped = header.warp_labels(moving_seg.data.to(device), mode=label_mode).cpu()
    scores = dice_per_label(fixed_seg.data, warped)
    return {
        "dice": sum(scores.values()) / max(len(scores), 1),
        "hd95": hd95(fixed_seg.data, warped, spacing=voxel_spacing(fixed.affine).tolist()),
    }


def _inverse_report(inverse: InverseField, wanted: str) -> dict:
    """The inverse's method, residual, and whether it converged and is written; a warning when it did not converge."""
    residual = float(inverse.residual_voxels[0])
    converged = residual <= INVERSE_CONVERGED_VOXELS
    written = wanted == "write" or (wanted == "converged" and converged)
    if not converged:
        what = "written anyway (--inverse-warp converged or skip leaves it out)" if written else "not written"
        print(
            f"warning: the inverse warp did not converge: its largest residual is {residual:.2g} voxels (above "
            f"{INVERSE_CONVERGED_VOXELS:g}) after {inverse.iterations} iterations, so 1InverseWarp.nii.gz maps some "
            f"points wrongly (a folding or very large warp has no exact inverse there); {what}",
            file=sys.stderr,
        )
    return {
        "method": inverse.method,
        "residual_voxels": residual,
        "iterations": inverse.iterations,
        "converged": converged,
        "written": written,
    }


def run(args: argparse.Namespace) -> dict:
    """Register, write the outputs into ``args.out``, return the metrics (and ``out``)."""
    _check_options(args)
    phases = Phases("lightning-reg register", args.quiet)
    with _output(args).staged("lightning-reg register") as folder:  # every problem of --out before the work
        report = _register(args, phases, folder)
    return {**report, "out": str(args.out)}


def _register(args: argparse.Namespace, phases: Phases, folder: Path) -> dict:
    """Read, solve, measure and write into ``folder``; returns what ``metrics.json`` holds."""
    if args.threads:
        torch.set_num_threads(args.threads)
    with phases.phase("reading", None):
        fixed, moving, fixed_seg, moving_seg = _load_inputs(args)
        _check_overlap(fixed, moving)
        masks = _load_masks(args, fixed, moving)
        if args.fixed_landmarks is not None:  # read before the solve: a bad file costs no registration
            fixed_points, moving_points = read_landmark_pair(args.fixed_landmarks, args.moving_landmarks, fixed.dims)
        made = provenance(args)
    solve = _solve_learned if args.checkpoint else _solve_classical
    result, described = solve(args, fixed, moving, fixed_seg, moving_seg, args.device, masks, phases)
    seconds = phases.seconds["registration"]
    _check_result(result, learned=bool(args.checkpoint))

    inverse = None
    if args.inverse_warp != "skip":
        with phases.phase("inverse", "inverted the warp", "inverting the warp ..."):
            inverse = result.inverse_field()
    with phases.phase("metrics", "measured"):
        warped_seg = None
        if fixed_seg is not None:
            warped_seg = result.warp_labels(moving_seg.data.to(args.device), mode=args.label_mode).cpu()
        batch = {"fixed": fixed.data, "fixed_affine": fixed.affine[None]}
        if fixed_seg is not None:
            batch.update(fixed_seg=fixed_seg.data, moving_seg=moving_seg.data)
        (row,) = pair_rows(batch, result, seconds, warped_seg=warped_seg, inverse=inverse)
        before = (
            None
            if fixed_seg is None
            else _dice_before(fixed, moving, fixed_seg, moving_seg, args.label_mode, args.device)
        )
    linear, transform = stages(described["transform"])
    report = {
        "transform": transform,
        "similarity": described["similarity"],
        "init": linear or "none",
        "scales": described["scales"],
        "iterations": described["iterations"],
        "checkpoint": str(args.checkpoint) if args.checkpoint else None,
        "prompt_labels": args.prompt_labels or [],
        "prompt_weight": args.prompt_weight,
        "masks": {
            "fixed": args.fixed_mask and str(args.fixed_mask),
            "moving": args.moving_mask and str(args.moving_mask),
        },
        "folding_percent": row["folding_percent"],
        "ndv_percent": row["ndv_percent"],
        "sdlogj": row["sdlogj"],
        "seconds": seconds,
        "stationarity": float(result.stationarity[0]),
        "label_mode": args.label_mode if fixed_seg is not None else None,
    }
    if inverse is not None:
        report["inverse"] = _inverse_report(inverse, args.inverse_warp)
        report["inverse_consistency_mm"] = {
            "mean": row["inverse_consistency_mm"],
            "p95": row["inverse_consistency_p95_mm"],
        }
    if args.fixed_landmarks is not None:
        mapped = result.map_points_mm(fixed_points[None].to(result.grid.device))[0].cpu()
        report["tre_mm"] = {
            "before": target_registration_error(fixed_points, moving_points),
            "after": target_registration_error(mapped, moving_points),
        }
    if fixed_seg is not None:
        report.update(
            dice=row["dice"],
            dice_before=before["dice"],
            hd95=row["hd95"],
            hd95_before=before["hd95"],
            dice_per_label={key[len("dice_") :]: value for key, value in row.items() if key.startswith("dice_")},
        )
    with phases.phase("writing", "wrote the results"):
        written = inverse is not None and report["inverse"]["written"]
        warped, displacement = result.warp(moving.data.to(args.device))[0], result.displacement_mm()[0]
        # gzip releases the GIL: the files compress side by side (1.3 s -> 0.7 s for a 2 mm brain, 2 threads)
        with ThreadPoolExecutor(max_workers=max(torch.get_num_threads(), 1)) as pool:
            tasks = [
                pool.submit(save_ants_transforms, result, inverse if written else None, fixed, folder),
                pool.submit(save_itk_displacement, displacement, fixed, folder / "warp.nii.gz"),
                pool.submit(save_volume, warped, fixed, folder / "warped.nii.gz"),
            ]
            if warped_seg is not None:
                tasks.append(pool.submit(save_volume, warped_seg[0], fixed, folder / "warped_seg.nii.gz", kind="label"))
            for task in tasks:
                task.result()  # a failed write raises here, as it would have in turn
    report.update(solver=described, **made, seconds_per_phase=dict(phases.seconds))
    write_text(folder / "metrics.json", json.dumps(report, indent=2))
    return report
