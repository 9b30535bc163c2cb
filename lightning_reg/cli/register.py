"""``lightning-reg register``: register two NIfTI files, classically on the intensities or with a
trained model (``--checkpoint``), optionally with a label prompt."""

from __future__ import annotations

import argparse
import hashlib
import platform
import shlex
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import torch

from ..errors import InputError, OneLineParser, recorded_warnings, warn
from ..evaluation.metrics import dice_per_label, hd95
from ..evaluation.rows import pair_rows
from ..files import strict_json
from ..files.ants import save_ants_transforms
from ..files.landmarks import read_landmark_pair
from ..files.nifti import Volume, default_max_voxels, load_volume, onto_grid, save_itk_displacement, save_volume
from ..files.output_folder import OutputFolder, write_text
from ..models import BUNDLED, resolve_checkpoint
from ..solver import (
    CLASSICAL,
    FAST,
    PRESETS,
    RegistrationLayer,
    RegistrationResult,
    choices,
    field_of_view_overlap,
    label_prompt,
    register,
)
from ..solver.checks import level_iterations
from ..solver.energy.similarity import LNCC_WINDOW
from ..solver.geometry.inverse import InverseField
from ..solver.geometry.spatial import voxel_spacing
from ..solver.options import option_help
from ..solver.result import LABEL_MODE
from .parsing import checkpoint_option, count, device_option, finite_float, positive_int, thread_count, user_path
from .progress import Phases
from .register_batch import check_arguments, run_batch
from .register_report import Measured, build_report
from .register_request import RegisterRequest

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
    parser.add_argument("--fixed", type=user_path, help="fixed image (.nii/.nii.gz)")
    parser.add_argument("--moving", type=user_path, help="moving image (.nii/.nii.gz)")
    parser.add_argument(
        "--pairs",
        type=user_path,
        help="instead of --fixed/--moving (and their label maps, masks, landmarks): a CSV with a "
        "column per option (fixed, moving, fixed_seg, ...; relative paths from the CSV's folder) and "
        "an optional name column, one pair a line, registered in one process into --out/<name>/",
    )
    parser.add_argument("--fixed-seg", type=user_path, help="fixed label map, for Dice/HD95 and prompts")
    parser.add_argument("--moving-seg", type=user_path, help="moving label map, warped into fixed space")
    parser.add_argument(
        "--fixed-mask",
        type=user_path,
        help="cost-function mask of the fixed image (nonzero inside, "
        "same grid): the similarity counts only voxels inside it, as ANTs' -x",
    )
    parser.add_argument(
        "--moving-mask",
        type=user_path,
        help="cost-function mask of the moving image (nonzero inside, "
        "same grid): fixed voxels mapped outside it are not compared (a lesion, a cut field of view)",
    )
    parser.add_argument(
        "--fixed-landmarks",
        type=user_path,
        help="CSV of fixed-image landmarks (x, y[, z] columns, RAS "
        "mm), for the target registration error; needs --moving-landmarks",
    )
    parser.add_argument(
        "--moving-landmarks", type=user_path, help="CSV of the corresponding moving-image landmarks, same order"
    )
    parser.add_argument(
        "--checkpoint",
        type=checkpoint_option,
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
    parser.add_argument(
        "--metrics",
        default="all",
        choices=["all", "quick"],
        help="metrics.json's figures: all, or quick: without HD95 and the non-diffeomorphic volume "
        "(about 1 s less for a 3D brain with labels); default %(default)s",
    )
    parser.add_argument("--device", default="cpu", type=device_option, help="cpu, cuda or cuda:N")
    parser.add_argument("--threads", type=thread_count, help="CPU threads for torch")
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
        type=user_path,
        help="output folder (a new one, or one lightning-reg wrote, with --overwrite)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an --out folder that lightning-reg wrote before, once the new results are "
        "complete (never the working folder or a folder holding the inputs)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress: only warnings, errors and the last line")
    parser.add_argument(
        "--no-qc",
        action="store_true",
        help="do not draw qc.png (fixed, moving, warped, label outlines, checkerboard, deformed grid, "
        "Jacobian determinant: three orthogonal slices of a 3D pair)",
    )
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


@dataclass
class Loaded:
    """The request's files, read and checked: images, label maps, cost-function masks ``[1, 1, *S]``
    (``None`` when absent), landmarks in mm, and the provenance of the inputs."""

    fixed: Volume
    moving: Volume
    fixed_seg: Volume | None
    moving_seg: Volume | None
    masks: dict[str, torch.Tensor | None]
    landmarks: tuple[torch.Tensor, torch.Tensor] | None
    provenance: dict


def run(args: argparse.Namespace) -> dict:
    """Register, write the outputs into ``args.out``, return the metrics (and ``out``); with
    ``args.pairs``, every pair of that CSV (:mod:`.register_batch`)."""
    check_arguments(args)
    if args.pairs is not None:
        return run_batch(args, run)
    request = RegisterRequest.from_arguments(args)
    request.check()
    phases = Phases("lightning-reg register", request.quiet)
    inputs = [*request.input_files.values(), request.checkpoint]
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
    solve = _solve_learned if request.learned else _solve_classical
    result, described = solve(request, loaded, phases)
    seconds = phases.seconds["registration"]
    _check_result(result, learned=request.learned)
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


def load(request: RegisterRequest) -> Loaded:
    """Read and check every input file of ``request`` (landmarks too: a bad file costs no registration)."""
    read = dict(max_voxels=request.max_voxels, ignore_header=request.ignore_header)
    fixed, moving = load_volume(request.fixed, **read), load_volume(request.moving, **read)
    if fixed.dims != moving.dims:
        raise InputError(f"fixed image is {fixed.dims}D but moving image is {moving.dims}D")
    if fixed.data.shape[1] != moving.data.shape[1]:
        raise InputError(f"fixed has {fixed.data.shape[1]} channels, moving {moving.data.shape[1]}")
    labels, ignore = dict(kind="label", **read), request.ignore_header
    fixed_seg = moving_seg = None
    if request.fixed_seg and request.moving_seg:
        fixed_seg = onto_grid(load_volume(request.fixed_seg, **labels), fixed, "--fixed-seg", ignore)
        moving_seg = onto_grid(load_volume(request.moving_seg, **labels), moving, "--moving-seg", ignore)
    _check_overlap(fixed, moving)
    landmarks = None
    if request.fixed_landmarks is not None and request.moving_landmarks is not None:
        landmarks = read_landmark_pair(request.fixed_landmarks, request.moving_landmarks, fixed.dims)
    masks = _load_masks(request, fixed, moving)
    return Loaded(fixed, moving, fixed_seg, moving_seg, masks, landmarks, provenance(request))


def _load_masks(request: RegisterRequest, fixed: Volume, moving: Volume) -> dict[str, torch.Tensor | None]:
    """``{"fixed_mask": [1, 1, *S] or None, "moving_mask": ...}`` from ``--fixed-mask``/``--moving-mask``."""
    masks = {}
    read = dict(kind="mask", max_voxels=request.max_voxels, ignore_header=request.ignore_header)
    for role, path, image in (("fixed", request.fixed_mask, fixed), ("moving", request.moving_mask, moving)):
        masks[f"{role}_mask"] = None
        if path is not None:
            mask = onto_grid(load_volume(path, **read), image, f"--{role}-mask", request.ignore_header)
            masks[f"{role}_mask"] = mask.data
    return masks


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
        warn(
            f"only {overlap:.0%} of {fixed.path}'s field of view lies inside {moving.path}'s (from "
            f"their headers); if they should overlap more, check the headers or pass --ignore-header"
        )


def _check_result(result: RegistrationResult, learned: bool) -> None:
    if not bool(torch.isfinite(result.grid).all()):
        cause = (
            "the model's features are too large (a checkpoint of a diverged training run?)"
            if learned
            else "try a smaller --learning-rate or a --regularizer"
        )
        raise InputError(f"the solver diverged: its warp is not finite; {cause}")


def _prompts(request: RegisterRequest, loaded: Loaded) -> list:
    if not request.prompt_labels or loaded.fixed_seg is None or loaded.moving_seg is None:
        return []
    fixed, moving = loaded.fixed_seg.data.to(request.device), loaded.moving_seg.data.to(request.device)
    return [label_prompt(fixed, moving, list(request.prompt_labels), request.prompt_weight)]


def _solve_classical(request: RegisterRequest, loaded: Loaded, phases: Phases) -> tuple[RegistrationResult, dict]:
    """Classical registration of the intensities; returns the result and every setting it used."""
    options = request.classical_options()
    iterations = level_iterations(options.iterations, len(options.scales or (1,)))
    described = RegistrationLayer(options).describe()
    progress = phases.solver_progress(sum(iterations) * (2 if options.linear else 1))
    device = request.device
    with phases.phase("registration", "registered"):
        result = register(
            loaded.fixed.data.to(device),
            loaded.moving.data.to(device),
            options,
            fixed_affine=loaded.fixed.affine,
            moving_affine=loaded.moving.affine,
            prompts=_prompts(request, loaded),
            callback=progress,
            **{name: None if mask is None else mask.to(device) for name, mask in loaded.masks.items()},
        )
        progress.close()
    return result, described


def _solve_learned(request: RegisterRequest, loaded: Loaded, phases: Phases) -> tuple[RegistrationResult, dict]:
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
        model = load_model(request.checkpoint, request.device)
    check_model_input(model, loaded.fixed)
    warn_thick_slices([loaded.fixed, loaded.moving])
    linear, transform = model.eval_solver.stages()
    settings = settings_with(
        model,
        transform=request.transform or transform,
        linear=request.init or linear or "none",
        similarity=request.similarity,
        scales=None if request.scales is None else list(request.scales),
        iterations=None if request.iterations is None else list(request.iterations),
        learning_rate=request.learning_rate,
        regularizer=request.regularizer,
        regularizer_weight=request.regularizer_weight,
        tolerance=request.tolerance,
        optimizer=request.optimizer,
        interpolation=request.interpolation,
        similarity_options={"window": request.window} if request.window else None,
        prompt_labels=list(request.prompt_labels) or None,
        prompt_weight=request.prompt_weight if request.prompt_labels else None,
        feature_channels=request.feature_channels,
    )
    described = settings.layer().describe()
    described.update(
        scales=list(settings.scales or model.network.scales),
        iterations=list(settings.iterations),
        network=type(model.network).__name__,
        feature_channels=settings.feature_channels,
    )
    batch = model_batch(loaded.fixed, loaded.moving, loaded.fixed_seg, loaded.moving_seg, request.device, loaded.masks)
    progress = phases.solver_progress(sum(settings.iterations) * (2 if settings.stages()[0] else 1))
    with torch.no_grad():
        network = type(model.network).__name__
        with phases.phase("features", f"computed the features ({network})", f"computing the features ({network}) ..."):
            features = model.features(batch["fixed"], batch["moving"])
        with phases.phase("registration", "registered"):
            result = model.solve(batch, features, settings, callback=progress)[-1]
            progress.close()
    return result, described


def _invert(result: RegistrationResult, phases: Phases) -> InverseField:
    with phases.phase("inverse", "inverted the warp", "inverting the warp ..."):
        return result.inverse_field()


def warped_labels(request: RegisterRequest, loaded: Loaded, result: RegistrationResult) -> torch.Tensor | None:
    """The moving label map on the fixed grid ``[1, 1, *S]`` (``--label-mode``), ``None`` without labels."""
    if loaded.fixed_seg is None or loaded.moving_seg is None:
        return None
    return result.warp_labels(loaded.moving_seg.data.to(request.device), mode=request.label_mode).cpu()


def measure(
    request: RegisterRequest,
    loaded: Loaded,
    result: RegistrationResult,
    seconds: float,
    inverse: InverseField | None,
    warped_seg: torch.Tensor | None,
) -> Measured:
    """The pair's numbers; ``warped_seg``: :func:`warped_labels`."""
    fixed, fixed_seg, moving_seg = loaded.fixed, loaded.fixed_seg, loaded.moving_seg
    batch = {"fixed": fixed.data, "fixed_affine": fixed.affine[None]}
    if fixed_seg is not None and moving_seg is not None:
        batch.update(fixed_seg=fixed_seg.data, moving_seg=moving_seg.data)
    full = request.metrics == "all"
    (row,) = pair_rows(batch, result, seconds, warped_seg=warped_seg, inverse=inverse, full=full)
    before = None
    if fixed_seg is not None and moving_seg is not None:
        before = _dice_before(loaded.fixed, loaded.moving, fixed_seg, moving_seg, request, with_hd95=full)
    landmarks = None
    if loaded.landmarks is not None:
        fixed_points, moving_points = loaded.landmarks
        mapped = result.map_points_mm(fixed_points[None].to(result.grid.device))[0].cpu()
        landmarks = (fixed_points, mapped, moving_points)
    return Measured(row, before, landmarks)


def write_outputs(
    folder: Path,
    result: RegistrationResult,
    inverse: InverseField | None,
    loaded: Loaded,
    warped: torch.Tensor,
    warped_seg: torch.Tensor | None,
) -> None:
    """The ANTs transforms (with ``inverse`` when given), the composed warp, the warped image ``[C, *S]``
    and labels."""
    fixed = loaded.fixed
    displacement = result.displacement_mm()[0]
    # gzip releases the GIL: the files compress side by side (1.3 s -> 0.7 s for a 2 mm brain, 2 threads)
    with ThreadPoolExecutor(max_workers=max(torch.get_num_threads(), 1)) as pool:
        tasks = [
            pool.submit(save_ants_transforms, result, inverse, fixed, folder),
            pool.submit(save_itk_displacement, displacement, fixed, folder / "warp.nii.gz"),
            pool.submit(save_volume, warped, fixed, folder / "warped.nii.gz"),
        ]
        if warped_seg is not None:
            tasks.append(pool.submit(save_volume, warped_seg[0], fixed, folder / "warped_seg.nii.gz", kind="label"))
        for task in tasks:
            task.result()  # a failed write raises here, as it would have in turn


def write_quality_figure(
    path: Path, result: RegistrationResult, loaded: Loaded, warped: torch.Tensor, warped_seg: torch.Tensor | None
) -> None:
    """``qc.png``: the registration to check by eye (``evaluation/quality_control.py``); ``warped``
    ``[C, *S]``."""
    from ..evaluation.pictures import save_figure  # matplotlib takes 0.45 s to import: only qc.png pays it
    from ..evaluation.quality_control import quality_figure

    figure = quality_figure(
        loaded.fixed.data[0],
        loaded.moving.data[0],
        warped.cpu(),
        result.displacement_voxels()[0].cpu(),
        result.jacobian_determinant()[0, 0].cpu(),
        None if warped_seg is None else warped_seg[0],
        spacing=tuple(voxel_spacing(loaded.fixed.affine).tolist()),
        title=f"{loaded.moving.path.name} -> {loaded.fixed.path.name}",
    )
    save_figure(figure, path)


def sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes, hex."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def provenance(request: RegisterRequest) -> dict:
    """How a result was made, as far as it is known before the solve: the command line, the versions,
    the machine's threads, each input file (and the checkpoint) with its SHA-256."""
    inputs = {name: {"path": str(path), "sha256": sha256(path)} for name, path in request.input_files.items()}
    path = resolve_checkpoint(request.checkpoint) if request.checkpoint else None
    if path is not None and path.is_file():  # else loading it says what is wrong
        inputs["checkpoint"] = {"path": str(path), "given": str(request.checkpoint), "sha256": sha256(path)}
    return {
        "command": shlex.join(request.command_line),
        "versions": {name: version(name) for name in ("lightning_reg", "torch", "nibabel", "numpy")}
        | {"python": platform.python_version()},
        "machine": {"device": str(request.device), "threads": torch.get_num_threads(), "platform": platform.platform()},
        "inputs": inputs,
    }


def _dice_before(
    fixed: Volume, moving: Volume, fixed_seg: Volume, moving_seg: Volume, request: RegisterRequest, with_hd95: bool
) -> dict:
    """Dice and HD95 (``None`` without ``with_hd95``) of the label maps as the headers alone align them
    (no registration)."""
    device = request.device
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
        warped = header.warp_labels(moving_seg.data.to(device), mode=request.label_mode).cpu()
    scores = dice_per_label(fixed_seg.data, warped)
    spacing = voxel_spacing(fixed.affine).tolist()
    return {
        "dice": sum(scores.values()) / max(len(scores), 1),
        "hd95": hd95(fixed_seg.data, warped, spacing=spacing) if with_hd95 else None,
    }
