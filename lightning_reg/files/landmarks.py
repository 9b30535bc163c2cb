"""Landmark files for the target registration error: a CSV with a header row naming ``x``, ``y``
(and ``z`` in 3D) columns, world millimetres in NIfTI's RAS frame (the frame ``nibabel`` gives
``image.affine @ voxel``), one landmark a row; other columns (an ``id``, a name) are ignored. The
fixed and moving files list corresponding landmarks in the same order."""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from ..errors import InputError

AXES = ("x", "y", "z")


def read_landmarks(path: str | Path, dims: int) -> torch.Tensor:
    """``[N, dims]`` float64 world points (RAS mm) of a landmark CSV (module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"file not found: {path}")
    try:
        with open(path, newline="") as handle:
            rows = list(csv.DictReader(handle))
    except (UnicodeDecodeError, csv.Error) as error:
        raise InputError(f"cannot read {path} as a CSV of landmarks: {error}") from None
    axes = AXES[:dims]
    columns = {name.strip().lower(): name for name in (rows[0].keys() if rows else [])}
    missing = [axis for axis in axes if axis not in columns]
    if not rows or missing:
        raise InputError(
            f"{path} needs a header row with the columns {', '.join(axes)} (RAS mm) and one landmark a "
            f"row" + (f"; missing {', '.join(missing)}" if rows else "; it has no rows")
        )
    points = []
    for number, row in enumerate(rows, start=2):
        try:
            point = [float(row[columns[axis]]) for axis in axes]
        except (TypeError, ValueError):
            raise InputError(f"{path} line {number}: {', '.join(axes)} must be numbers") from None
        if not all(value == value and abs(value) != float("inf") for value in point):
            raise InputError(f"{path} line {number}: a coordinate is NaN or infinite")
        points.append(point)
    return torch.tensor(points, dtype=torch.float64)


def read_landmark_pair(fixed: str | Path, moving: str | Path, dims: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The fixed and moving landmarks, checked to correspond one to one."""
    fixed_points, moving_points = read_landmarks(fixed, dims), read_landmarks(moving, dims)
    if len(fixed_points) != len(moving_points):
        raise InputError(
            f"{fixed} has {len(fixed_points)} landmarks but {moving} has {len(moving_points)}: the "
            f"files must list corresponding landmarks in the same order"
        )
    return fixed_points, moving_points
