"""Preprocessing of real images with torchio: canonical orientation, resampling, label lookup,
pad/crop and intensity normalization."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torchio as tio

NORMALIZATIONS = ("minmax", "zscore", "none")

#: FreeSurfer ``aseg`` codes of the structures the OASIS ``seg35`` maps keep (cortex, white matter,
#: ventricles, subcortical nuclei, cerebellum, brain stem, choroid plexus, both hemispheres), in the
#: order that numbers them 1..35. ``label_lookup: aseg`` maps a FreeSurfer aseg to this set.
ASEG_STRUCTURES = (
    2,
    3,
    4,
    5,
    7,
    8,
    10,
    11,
    12,
    13,
    14,
    15,
    16,
    17,
    18,
    24,
    26,
    28,
    31,
    41,
    42,
    43,
    44,
    46,
    47,
    49,
    50,
    51,
    52,
    53,
    54,
    58,
    60,
    63,
    77,
)


class LookupLabels(tio.transforms.LabelTransform):
    """Map label codes through a lookup table; codes missing from it become background (0).

    Written here because ``tio.RemapLabels`` keeps codes that are not in its table, which would
    leave e.g. FreeSurfer's 1000s cortical parcels in a map meant to hold 35 structures.
    """

    def __init__(self, table: Mapping[int, int], **kwargs) -> None:
        super().__init__(**kwargs)
        self.table = {int(code): int(label) for code, label in table.items()}
        self.args_names = ["table"]

    def apply_transform(self, subject: tio.Subject) -> tio.Subject:
        for image in self.get_images(subject):
            data = image.data.long()
            lookup = torch.zeros(int(max(data.max().item(), max(self.table, default=0))) + 1, dtype=torch.long)
            for code, label in self.table.items():
                if 0 <= code < len(lookup):
                    lookup[code] = label
            image.set_data(lookup[data.clamp_min(0)])
        return subject


def read_label_lookup(lookup: str | Mapping[int, int] | None) -> dict[int, int] | None:
    """A ``code -> label`` table from ``aseg`` (FreeSurfer aseg to 1..35), a dict, a JSON file
    (``{"code": label}``) or a two-column CSV/TSV file (``code,label``; a header row is skipped)."""
    if lookup is None or isinstance(lookup, Mapping):
        return None if lookup is None else {int(k): int(v) for k, v in lookup.items()}
    if lookup == "aseg":
        return {code: index + 1 for index, code in enumerate(ASEG_STRUCTURES)}
    path = Path(lookup)
    if not path.is_file():
        raise ValueError(f"label_lookup {lookup}: no such file (give 'aseg', a JSON or a two-column CSV/TSV file)")
    if path.suffix == ".json":
        return {int(k): int(v) for k, v in json.loads(path.read_text()).items()}
    delimiter = "\t" if path.suffix in (".tsv", ".txt") else ","
    table = {}
    with open(path, newline="") as handle:
        for number, row in enumerate(csv.reader(handle, delimiter=delimiter)):
            if not row or row[0].startswith("#"):
                continue
            try:
                table[int(row[0])] = int(row[1])
            except (ValueError, IndexError):
                if number == 0:
                    continue  # a header row
                raise ValueError(f"{path}, line {number + 1}: expected 'code{delimiter}label', got {row}") from None
    return table


def spatial_preprocessing(
    canonical: bool = True,
    spacing: float | Sequence[float] | None = None,
    size: Sequence[int] | None = None,
    label_lookup: Mapping[int, int] | None = None,
) -> list[tio.Transform]:
    """Orientation (RAS+), resampling to ``spacing`` mm, label lookup, pad/crop to ``size`` voxels
    (centred); each step only when asked for."""
    steps: list[tio.Transform] = []
    if canonical:
        steps.append(tio.ToCanonical())
    if spacing is not None:
        target: Any = tuple(spacing) if isinstance(spacing, Sequence) else float(spacing)  # 2 or 3 axes, or one
        steps.append(tio.Resample(target))
    if label_lookup:
        steps.append(LookupLabels(label_lookup))
    if size is not None:
        steps.append(tio.CropOrPad(tuple(int(n) for n in size)))
    return steps


def normalization(name: str) -> list[tio.Transform]:
    """``minmax``: percentiles 0.5 and 99.5 to [0, 1] (clipped); ``zscore``: zero mean, unit
    variance; ``none``."""
    if name == "minmax":
        return [tio.RescaleIntensity(out_min_max=(0.0, 1.0), percentiles=(0.5, 99.5))]
    if name == "zscore":
        return [tio.ZNormalization()]
    if name == "none":
        return []
    raise ValueError(f"unknown normalization {name!r}; choose one of {', '.join(NORMALIZATIONS)}")


def size_for_2d(size: Sequence[int] | None, dims: int) -> tuple[int, ...] | None:
    """torchio works on 3D grids: a 2D size ``(H, W)`` is ``(H, W, 1)`` there."""
    if size is None:
        return None
    size = tuple(int(n) for n in size)
    if len(size) != dims:
        raise ValueError(f"size {list(size)} has {len(size)} numbers; the data are {dims}D")
    return size + (1,) if dims == 2 else size
