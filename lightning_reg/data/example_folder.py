"""A small dataset in the Learn2Reg OASIS layout, made by the synthetic generator, to try training on
before pointing the same commands at real scans (the tutorial of the docs):

    python -m lightning_reg.data.example_folder my_scans

writes ``my_scans/OASIS_dataset.json``, ``imagesTr/OASIS_0001_0000.nii.gz``, ... and ``labelsTr/``
with the same names. Every subject is one anatomy (a label map) bent by its own smooth diffeomorphic
warp and drawn with the same contrast, as scans of one scanner; the last ``val_pairs + 1`` subjects
form the validation pairs, which the data module keeps out of training.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

import nibabel as nib
import numpy as np
import torch

from ..errors import OneLineParser, interrupted, report
from ..files.output_folder import OutputFolder
from ..solver.geometry.spatial import exponentiate, field_to_grid, identity_grid, sample
from .synthetic import label_image, random_labels, random_velocity

#: a subject's file name in ``imagesTr/`` and ``labelsTr/``, as Learn2Reg names OASIS
FILE_NAME = "OASIS_{number:04d}_0000.nii.gz"


def write_example_folder(
    folder: str | Path,
    subjects: int = 10,
    size: int = 32,
    val_pairs: int = 2,
    spacing: float = 2.0,
    seed: int = 0,
    overwrite: bool = False,
) -> Path:
    """Write ``subjects`` 3D scans of ``size``³ voxels of ``spacing`` mm with label maps into a new
    ``folder`` (or, with ``overwrite``, one written here before); returns the dataset's JSON file."""
    if subjects < val_pairs + 3:
        raise ValueError(f"{val_pairs} validation pairs need {val_pairs + 1} subjects, and training two more")
    shape = (size, size, size)
    anatomy = random_labels(shape, num_labels=8, generator=torch.Generator().manual_seed(seed)).float()
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = -spacing * (size - 1) / 2  # centred on the world origin, as a scanner's
    entries = []
    with OutputFolder(folder, overwrite, flag="the example folder").staged("lightning_reg.data.example_folder") as out:
        for kind in ("imagesTr", "labelsTr"):
            (out / kind).mkdir()
        for number in range(1, subjects + 1):
            generator = torch.Generator().manual_seed(seed + number)
            warp = exponentiate(random_velocity(shape, magnitude=2.0, generator=generator))
            labels = sample(anatomy, identity_grid(shape) + field_to_grid(warp), mode="nearest").long()
            image = label_image(labels, torch.Generator().manual_seed(seed))  # one contrast for every scan
            name = FILE_NAME.format(number=number)
            nib.save(nib.Nifti1Image(image[0, 0].numpy().astype(np.float32), affine), str(out / "imagesTr" / name))
            nib.save(nib.Nifti1Image(labels[0, 0].numpy().astype(np.int16), affine), str(out / "labelsTr" / name))
            entries.append({"image": f"./imagesTr/{name}", "label": f"./labelsTr/{name}"})
        held_out = [entry["image"] for entry in entries[-(val_pairs + 1) :]]
        pairs = [{"fixed": fixed, "moving": moving} for fixed, moving in zip(held_out, held_out[1:])]
        description = {"name": "example", "tensorImageShape": {"0": list(shape)}, "training": entries}
        description["registration_val"] = pairs
        (out / "OASIS_dataset.json").write_text(json.dumps(description, indent=1))
    return Path(folder) / "OASIS_dataset.json"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m lightning_reg.data.example_folder FOLDER [--subjects N] [--size N] [--overwrite]``."""
    parser = OneLineParser(prog="python -m lightning_reg.data.example_folder", description=__doc__.split("\n")[0])
    parser.add_argument("folder", help="the new folder")
    parser.add_argument("--subjects", type=int, default=10, help="how many scans (default %(default)s)")
    parser.add_argument("--size", type=int, default=32, help="voxels along each axis (default %(default)s)")
    parser.add_argument("--val-pairs", type=int, default=2, help="validation pairs (default %(default)s)")
    parser.add_argument("--overwrite", action="store_true", help="replace a folder written here before")
    args = parser.parse_args(argv)
    try:
        write_example_folder(args.folder, args.subjects, args.size, args.val_pairs, overwrite=args.overwrite)
    except KeyboardInterrupt:
        return interrupted(parser.prog, "nothing half-written was left")
    except Exception as error:
        return report(error, parser.prog)
    print(f"{parser.prog}: wrote {args.folder}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
