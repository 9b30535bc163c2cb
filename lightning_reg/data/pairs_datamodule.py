"""Pairs listed in a CSV manifest, for any data that is neither OASIS nor BIDS."""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterable

from .datasets import Pair
from .file_datamodule import FileDataModule, Splits
from .subjects import ImageRecord

SPLITS = ("train", "val", "test")
#: optional file columns of a role (``fixed_<column>``, ``moving_<column>``), each the ImageRecord field it fills
OPTIONAL = ("seg", "mask", "landmarks")
#: those given for both roles or neither: a label or landmark comparison needs both sides
PAIRED = ("seg", "landmarks")


def _record(row: dict, role: str, folder: Path, columns: set[str]) -> ImageRecord:
    image = folder / row[role].strip()
    files = {column: folder / row[f"{role}_{column}"].strip() for column in OPTIONAL if f"{role}_{column}" in columns}
    return ImageRecord(image.name.split(".")[0], image, **files)


def _short_name(path: Path, depth: int) -> str:
    folders = path.parent.parts[-(depth - 1) :] if depth > 1 else ()
    return "-".join([*folders, path.name.split(".")[0]])


def short_names(paths: Iterable[Path]) -> dict[Path, str]:
    """A name for each image file (its pairs' ids are made of them): its stem, preceded by as many of
    its folders as tell it from the others (``a/img.nii.gz``, ``c/img.nii.gz``: ``a-img``, ``c-img``)."""
    left, names, depth = sorted(set(paths)), {}, 1
    while left:
        counts = Counter(_short_name(path, depth) for path in left)
        last = all(depth > len(path.parts) for path in left)
        names.update({path: _short_name(path, depth) for path in left if last or counts[_short_name(path, depth)] == 1})
        left, depth = [path for path in left if path not in names], depth + 1
    return names


class PairsDataModule(FileDataModule):
    """Pairs from a CSV file with columns ``fixed,moving`` and optionally ``fixed_seg,moving_seg``
    (label maps), ``fixed_mask`` and/or ``moving_mask`` (cost-function masks, as ``register
    --fixed-mask``), ``fixed_landmarks,moving_landmarks`` (landmark CSVs, world mm, for the target
    registration error in ``test``) and ``split`` (``train``/``val``/``test``; without it every
    pair is in every split). Relative paths are relative to the CSV's folder; a column given needs a
    file on every row.

    Args:
        manifest: the CSV file.
        **kwargs: preprocessing, augmentation, shift and loader options of :class:`FileDataModule`.
    """

    def __init__(self, manifest: str | Path | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if manifest is None:
            raise ValueError("PairsDataModule needs its CSV file: --data.manifest PATH")
        self.manifest = Path(manifest)
        self.scan()

    def find_splits(self) -> Splits:
        if not self.manifest.is_file():
            raise ValueError(f"manifest {self.manifest} not found")
        with open(self.manifest, newline="") as handle:
            reader = csv.DictReader(handle)
            columns = set(reader.fieldnames or [])
            rows = list(reader)
        optional = [f"{role}_{column}" for role in ("fixed", "moving") for column in OPTIONAL] + ["split"]
        if not {"fixed", "moving"} <= columns or columns - {"fixed", "moving", *optional}:
            raise ValueError(
                f"{self.manifest} needs the columns fixed,moving and may have {','.join(optional)}; "
                f"found {sorted(columns)}"
            )
        for column in PAIRED:
            if len({f"fixed_{column}", f"moving_{column}"} & columns) == 1:
                raise ValueError(
                    f"{self.manifest} has only one of fixed_{column}/moving_{column}: give both or neither"
                )
        if not rows:
            raise ValueError(f"{self.manifest} lists no pairs")
        files = sorted(columns - {"fixed", "moving", "split"})
        by_split: dict[str, list[Pair]] = {split: [] for split in SPLITS}
        for number, row in enumerate(rows, start=2):
            empty = [column for column in files if not (row[column] or "").strip()]
            if empty:
                raise ValueError(
                    f"{self.manifest}, line {number}: no file in column {', '.join(empty)} (every row "
                    f"needs one where the column is given)"
                )
            pair = (
                _record(row, "fixed", self.manifest.parent, columns),
                _record(row, "moving", self.manifest.parent, columns),
            )
            split = (row.get("split") or "").strip()
            if "split" in columns and split not in SPLITS:
                raise ValueError(f"{self.manifest}, line {number}: split {split!r} is not one of {', '.join(SPLITS)}")
            for name in [split] if "split" in columns else SPLITS:
                by_split[name].append(pair)
        names = short_names(record.image for pairs in by_split.values() for pair in pairs for record in pair)
        named = {
            split: [
                (replace(fixed, name=names[fixed.image]), replace(moving, name=names[moving.image]))
                for fixed, moving in pairs
            ]
            for split, pairs in by_split.items()
        }
        return Splits(train_pairs=named["train"], val=named["val"], test=named["test"])
