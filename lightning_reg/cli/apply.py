"""``lightning-reg apply``: apply saved transforms (ours or ANTs') to an image or a label map, forward
or inverse, on any reference grid, as ``antsApplyTransforms`` does."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..errors import InputError, OneLineParser
from ..files.apply_transforms import INTERPOLATIONS, load_transforms, mapped_points, resample, stored_as_labels
from ..files.nifti import default_max_voxels, load_volume, save_volume
from ..files.output_folder import resolve_path
from .parsing import positive_int


def build_parser(prog: str = "lightning-reg apply") -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=prog,
        description="Apply the transforms lightning-reg register (or antsRegistration) "
        "wrote to an image or label map: --input resampled onto the --reference grid.",
    )
    parser.add_argument(
        "--reference",
        required=True,
        type=Path,
        help="the grid to resample onto: the fixed image (forward) or the moving one (--inverse)",
    )
    parser.add_argument("--input", required=True, type=Path, help="the image or label map to move (.nii/.nii.gz)")
    parser.add_argument(
        "--transforms",
        required=True,
        type=Path,
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
    parser.add_argument("--out", required=True, type=Path, help="the file to write (.nii.gz)")
    parser.add_argument("--overwrite", action="store_true", help="replace --out if it exists (never an input)")
    return parser


def _check_out(args: argparse.Namespace) -> None:
    out = resolve_path(args.out, "--out")
    inputs = {"--reference": args.reference, "--input": args.input, "--transforms": args.transforms}
    resolved = [resolve_path(path, flag) for flag, path in inputs.items()]
    if out in resolved or (args.transforms.is_dir() and resolved[-1] in out.parents):
        raise InputError(f"--out {args.out} is one of the inputs or inside the transforms folder: write elsewhere")
    if args.out.exists() and not args.overwrite:
        raise InputError(f"--out {args.out} exists; pass --overwrite to replace it")
    if not str(args.out).endswith((".nii", ".nii.gz")):
        raise InputError(f"--out {args.out} must be a NIfTI file name (.nii or .nii.gz)")
    if not args.out.parent.is_dir():
        raise InputError(f"the folder of --out {args.out} does not exist")
    if not os.access(args.out.parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot write into {args.out.parent} (permission denied): choose a folder you can write to")


def run(args: argparse.Namespace) -> dict:
    """Resample ``--input`` through ``--transforms`` onto ``--reference``; write ``--out``."""
    _check_out(args)
    labels = stored_as_labels(args.input)
    if args.interpolation == "label" and not labels:
        raise InputError(
            f"--interpolation label needs a label map (integers), and {args.input} stores other numbers; "
            f"use linear or nearest"
        )
    reference = load_volume(args.reference, max_voxels=args.max_voxels)
    image = load_volume(args.input, "label" if labels else "image", max_voxels=args.max_voxels)
    if image.dims != reference.dims:
        raise InputError(f"--input {args.input} is {image.dims}D but --reference {args.reference} is {reference.dims}D")
    transforms = load_transforms(args.transforms)
    moved = resample(image, reference, mapped_points(transforms, reference, args.inverse), args.interpolation)
    kind = "label" if labels and args.interpolation != "linear" else "image"
    save_volume(moved[0], reference, args.out, kind=kind)
    return {
        "out": str(args.out),
        "inverse": args.inverse,
        "interpolation": args.interpolation,
        "transforms": transforms.source,
    }
