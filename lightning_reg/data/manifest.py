"""Pairs listed in a CSV manifest, for any data that is neither OASIS nor BIDS."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from .datasets import Pair
from .file_datamodule import FileDataModule, Splits
from .subjects import ImageRecord

SPLITS = ("train", "val", "test")


def _record(row: dict, role: str, folder: Path, has_labels: bool) -> ImageRecord:
    image = folder / row[role].strip()
    seg = folder / row[f"{role}_seg"].strip() if has_labels else None
    return ImageRecord(image.name.split(".")[0], image, seg)


class PairsDataModule(FileDataModule):
    """Pairs from a CSV file with columns ``fixed,moving`` and optionally ``fixed_seg,moving_seg``
    (label maps) and ``split`` (``train``/``val``/``test``; without it every pair is in every split).
    Relative paths are relative to the CSV's folder.

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
        if not {"fixed", "moving"} <= columns:
            raise ValueError(f"{self.manifest} needs the columns fixed,moving (and optionally fixed_seg,moving_seg, "
                             f"split); found {sorted(columns)}")
        if len({"fixed_seg", "moving_seg"} & columns) == 1:
            raise ValueError(f"{self.manifest} has only one of fixed_seg/moving_seg: give both or neither")
        if not rows:
            raise ValueError(f"{self.manifest} lists no pairs")
        has_labels = "fixed_seg" in columns
        by_split: dict[str, list[Pair]] = {split: [] for split in SPLITS}
        for number, row in enumerate(rows, start=2):
            if has_labels and not ((row["fixed_seg"] or "").strip() and (row["moving_seg"] or "").strip()):
                raise ValueError(f"{self.manifest}, line {number}: a label map is missing (every row needs both)")
            pair = tuple(_record(row, role, self.manifest.parent, has_labels) for role in ("fixed", "moving"))
            split = (row.get("split") or "").strip()
            if "split" in columns and split not in SPLITS:
                raise ValueError(f"{self.manifest}, line {number}: split {split!r} is not one of {', '.join(SPLITS)}")
            for name in [split] if "split" in columns else SPLITS:
                by_split[name].append(pair)
        return Splits(train_pairs=by_split["train"], val=by_split["val"], test=by_split["test"])
