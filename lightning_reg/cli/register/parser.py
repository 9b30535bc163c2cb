"""``lightning-reg register``'s command line: its options, their help built from the solver's defaults."""

from __future__ import annotations

import argparse
from argparse import SUPPRESS
from typing import get_args

from ...errors import OneLineParser
from ...files.nifti import default_max_voxels
from ...models import BUNDLED
from ...solver import CLASSICAL, FAST, PRESETS, choices
from ...solver.energy.similarity import LNCC_WINDOW
from ...solver.options import option_help
from ...solver.result import LABEL_MODE, LabelMode
from ..parsing import (
    NONE_WORD,
    checkpoint_option,
    count,
    device_option,
    finite_float,
    optional_choice,
    positive_int,
    thread_count,
    user_path,
)
from .request import InverseWarp, MetricsSet


def build_parser(prog: str = "lightning-reg register") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Register a moving NIfTI image to a fixed one: classical "
        "registration of the intensities, or with --checkpoint on a trained model's features. "
        "Solver options left out take the defaults shown, or with --checkpoint the model's "
        "evaluation settings.",
    )
    _add_inputs(parser.add_argument_group("inputs"))
    _add_solver_options(parser.add_argument_group("solver (defaults shown; with --checkpoint: the model's)"))
    _add_outputs(parser.add_argument_group("outputs and run"))
    return parser


def _add_inputs(parser: argparse._ActionsContainer) -> None:
    """The files to register and their label maps, masks, landmarks; the model."""
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


def _add_solver_options(parser: argparse._ActionsContainer) -> None:
    """The solver's options (``SolverOptions`` field names; the ones left out are absent from the namespace)."""
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
    _none_or_choice(parser, "--init", "linear")
    parser.add_argument(
        "--learning-rate",
        default=SUPPRESS,
        type=finite_float,
        help="step: voxels (deformable) or frame units (linear); > 0; default: the transform's own",
    )
    parser.add_argument(
        "--window", type=positive_int, default=SUPPRESS, help=f"lncc window, voxels; default {LNCC_WINDOW}"
    )
    parser.add_argument(
        "--feature-channels",
        type=positive_int,
        default=SUPPRESS,
        help="with --checkpoint: solve on this many "
        "principal components of the model's features (fewer: a faster solve); default: the "
        "model's own setting (its card says which)",
    )
    _none_or_choice(parser, "--regularizer", "regularizer")
    parser.add_argument(
        "--regularizer-weight", type=finite_float, default=SUPPRESS, help="weight of --regularizer; needed with it"
    )
    _solver_flag(parser, "tolerance", type=finite_float)
    _solver_flag(parser, "optimizer", choices=choices("optimizer"))
    _solver_flag(parser, "interpolation", choices=choices("interpolation"))
    parser.add_argument(
        "--prompt-labels",
        type=int,
        nargs="+",
        metavar="LABEL",
        default=SUPPRESS,
        help="label values to align as well (a label-fidelity term; needs both --*-seg)",
    )
    parser.add_argument(
        "--prompt-weight", type=finite_float, default=SUPPRESS, help="weight of the prompt term; default 1"
    )


def _add_outputs(parser: argparse._ActionsContainer) -> None:
    """What is written and measured, and how the command runs."""
    parser.add_argument(
        "--label-mode",
        default=LABEL_MODE,
        choices=get_args(LabelMode),
        help="label warping, for warped_seg and the metrics: nearest voxel, or linear one-hot and "
        "the most likely label (as ANTs' GenericLabel, and as lightning-reg test); default "
        "%(default)s",
    )
    parser.add_argument(
        "--inverse-warp",
        default="write",
        choices=get_args(InverseWarp),
        help="1InverseWarp.nii.gz: write it (with a warning when the inversion did not converge), "
        "write it only when it converged, or skip it (and its time); default %(default)s",
    )
    parser.add_argument(
        "--metrics",
        default="all",
        choices=get_args(MetricsSet),
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


def _shown(value) -> str:
    return (
        " ".join(f"{item:g}" if isinstance(item, float) else str(item) for item in value)
        if isinstance(value, tuple)
        else str(value)
    )


def _solver_flag(parser: argparse._ActionsContainer, name: str, extra: str = "", **kwargs) -> None:
    """``--name`` of a solver option: its help from ``SolverOptions``, the classical default shown."""
    default = getattr(CLASSICAL, name)
    shown = "the optimizer's (above)" if default is None else _shown(default)
    text = f"{option_help(name)} Default: {shown}" + (f" ({extra})" if extra else "")
    parser.add_argument(f"--{name.replace('_', '-')}", help=text.replace("%", "%%"), default=SUPPRESS, **kwargs)


def _none_or_choice(parser: argparse._ActionsContainer, flag: str, option: str) -> None:
    """``flag``: one of ``option``'s choices, or ``none`` (no such stage or term, its default)."""
    parser.add_argument(
        flag,
        type=optional_choice(choices(option)),
        default=SUPPRESS,
        metavar="{" + ",".join((NONE_WORD, *choices(option))) + "}",
        help=f"{option_help(option)} Default: none",
    )
