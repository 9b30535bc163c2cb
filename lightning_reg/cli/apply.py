"""``lightning-reg apply``: apply saved transforms (ours or ANTs') to an image or a label map, forward
or inverse, on any reference grid, as ``antsApplyTransforms`` does."""

from __future__ import annotations

import argparse
import os

from ..errors import InputError, OneLineParser, warn
from ..files.apply_transforms import INTERPOLATIONS, check_coverage, load_transforms, mapped_points, resample
from ..files.nifti import default_max_voxels, load_volume, save_volume, stores_labels
from ..files.output_folder import refuse_link, resolve_path
from .parsing import positive_int, user_path


def build_parser(prog: str = "lightning-reg apply") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Apply the transforms lightning-reg register (or antsRegistration) "
        "wrote to an image or label map: --input resampled onto the --reference grid.",
    )
    parser.add_argument(
        "--reference",
        required=True,
        type=user_path,
        help="the grid to resample onto: the fixed image (forward) or the moving one (--inverse)",
    )
    parser.add_argument("--input", required=True, type=user_path, help="the image or label map to move (.nii/.nii.gz)")
    parser.add_argument(
        "--transforms",
        required=True,
        type=user_path,
        help="a folder lightning-reg register wrote, or one with ANTs' 0GenericAffine.mat, "
        "1Warp.nii.gz, 1InverseWarp.nii.gz, or an ANTs output prefix (out/reg_ for "
        "out/reg_0GenericAffine.mat)",
    )
    parser.add_argument(
        "--inverse",
        action="store_true",
        help="map fixed-space images onto the moving grid (the inverse affine, then 1InverseWarp)",
    )
    parser.add_argument(
        "--interpolation",
        default="linear",
        choices=INTERPOLATIONS,
        help="linear; nearest; label: one-hot linear and the most likely label, no new values (as "
        "ANTs' GenericLabel); default %(default)s",
    )
    parser.add_argument(
        "--max-voxels",
        type=positive_int,
        default=default_max_voxels(),
        help="refuse images larger than this (voxels x channels, from the header)",
    )
    parser.add_argument("--out", required=True, type=user_path, help="the file to write (.nii.gz)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists (never an input)")
    return parser


def _check_out(args: argparse.Namespace) -> None:
    out = args.out
    refuse_link(out, "--out")
    if out.is_dir():
        raise InputError(f"--out {out} is a folder: name the NIfTI file to write (e.g. --out moved.nii.gz)")
    inputs = {"--reference": args.reference, "--input": args.input, "--transforms": args.transforms}
    resolved = [resolve_path(path, flag) for flag, path in inputs.items()]
    target = resolve_path(out, "--out")
    if target in resolved or (args.transforms.is_dir() and resolved[-1] in target.parents):
        raise InputError(f"--out {out} is one of the inputs or inside the transforms folder: write elsewhere")
    if out.exists() and not args.overwrite:
        raise InputError(f"--out {out} exists; pass --overwrite to replace it")
    if not out.name.endswith((".nii", ".nii.gz")):
        raise InputError(f"--out {out} must be a NIfTI file name (.nii or .nii.gz)")
    if not out.parent.is_dir():
        raise InputError(f"the folder of --out {out} does not exist")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write into {out.parent} (permission denied): choose a folder you can write to")


def _kind(args: argparse.Namespace) -> str:
    """``label`` when the input is a label map to move as one (``--interpolation label`` or
    ``nearest``), else ``image``."""
    labels = stores_labels(args.input)
    if args.interpolation == "label" and not labels:
        raise InputError(
            f"--interpolation label needs a label map (whole numbers stored unscaled, one value per voxel), "
            f"and {args.input} is not one; use linear or nearest"
        )
    return "label" if labels and args.interpolation != "linear" else "image"


def run(args: argparse.Namespace) -> dict:
    """Resample ``--input`` through ``--transforms`` onto ``--reference``; write ``--out``."""
    _check_out(args)
    kind = _kind(args)
    reference = load_volume(args.reference, max_voxels=args.max_voxels, constant_ok=True)  # only its grid is used
    image = load_volume(args.input, kind, max_voxels=args.max_voxels, constant_ok=True)
    if image.dims != reference.dims:
        raise InputError(f"--input {args.input} is {image.dims}D but --reference {args.reference} is {reference.dims}D")
    transforms = load_transforms(args.transforms)
    points = mapped_points(transforms, reference, args.inverse)
    check_coverage(image, points, transforms.source)
    moved = resample(image, reference, points, args.interpolation)
    if float(moved.max() - moved.min()) == 0 and float(image.data.max() - image.data.min()) != 0:
        warn(f"every voxel of the result is {float(moved.max()):g}: check the transforms and --reference")
    save_volume(moved[0], reference, args.out, kind=kind, overwrite=args.overwrite)
    return {
        "out": str(args.out),
        "inverse": args.inverse,
        "interpolation": args.interpolation,
        "transforms": transforms.source,
    }
