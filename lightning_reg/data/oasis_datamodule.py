"""OASIS brain MRI as distributed: the Learn2Reg 2021 task 3 layout and the neurite-oasis layout
(the data guide of the docs says where to get them). Read in place, no conversion."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..files.names import confined
from .file_datamodule import FileDataModule, Splits, held_out_splits
from .subjects import ImageRecord

LAYOUTS = ("auto", "learn2reg", "neurite")
#: neurite-oasis file names per dimensionality: (image, labels).
NEURITE_FILES = {3: ("aligned_norm.nii.gz", "aligned_seg35.nii.gz"), 2: ("slice_norm.nii.gz", "slice_seg24.nii.gz")}


def _name(path: str | Path) -> str:
    """``OASIS_0001`` of ``imagesTr/OASIS_0001_0000.nii.gz``."""
    stem = Path(path).name.split(".")[0]
    return stem[:-5] if stem.endswith("_0000") else stem


class OASISDataModule(FileDataModule):
    """OASIS pairs: random training pairs of distinct training subjects, fixed validation/test pairs.

    Args:
        root: the dataset folder as unpacked.
        layout: ``learn2reg`` (``OASIS_dataset.json``, ``imagesTr/``, ``labelsTr/``; 3D; validation
            and test pairs: the JSON's ``registration_val``, whose subjects are left out of training,
            since the test labels are not public), ``neurite`` (``OASIS_OAS1_XXXX_MR1/`` folders;
            ``dims`` 3 reads ``aligned_norm``/``aligned_seg35``, 2 ``slice_norm``/``slice_seg24``), or
            ``auto`` (whichever ``root`` holds).
        subjects: neurite: a text file of subject folder names, one per line (default
            ``root/subjects.txt`` if present, else every ``OASIS_OAS1_*_MR1`` folder).
        val_subjects: neurite: the ``val_subjects`` subjects before the test set are the validation
            set; consecutive subjects make the pairs (as in Learn2Reg).
        test_subjects: neurite: the last ``test_subjects`` subjects of the list are the test set.
        image_file: neurite: another image file name in each subject folder.
        seg_file: neurite: another label map file name in each subject folder (e.g. ``aligned_seg4.nii.gz``).
        **kwargs: preprocessing, augmentation, shift and loader options of :class:`FileDataModule`.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        layout: str = "auto",
        subjects: str | Path | None = None,
        val_subjects: int = 5,
        test_subjects: int = 20,
        image_file: str | None = None,
        seg_file: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if root is None:
            raise ValueError(
                "OASISDataModule needs the dataset folder: --data.root PATH, the unpacked Learn2Reg OASIS "
                "download (with OASIS_dataset.json) or neurite-oasis (OASIS_OAS1_*_MR1 folders); the data "
                "guide of the docs says where to get them and on what terms"
            )
        if layout not in LAYOUTS:
            raise ValueError(f"unknown OASIS layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
        if val_subjects < 2 or test_subjects < 2:
            raise ValueError(
                f"val_subjects and test_subjects must be >= 2 (pairs need two), got {val_subjects}, {test_subjects}"
            )
        self.root, self.layout, self.subject_list = Path(root), layout, subjects
        self.val_subjects, self.test_subjects = val_subjects, test_subjects
        defaults = NEURITE_FILES[self.dims]
        self.image_file, self.seg_file = image_file or defaults[0], seg_file or defaults[1]
        self.scan()

    def resolved_layout(self) -> str:
        if not self.root.is_dir():
            raise ValueError(f"OASIS root {self.root} is not a folder; point --data.root at the unpacked dataset")
        if self.layout != "auto":
            return self.layout
        if (self.root / "OASIS_dataset.json").is_file():
            return "learn2reg"
        if any(self.root.glob("OASIS_OAS1_*")):
            return "neurite"
        raise ValueError(
            f"{self.root} holds neither OASIS_dataset.json (Learn2Reg) nor OASIS_OAS1_*_MR1 folders "
            f"(neurite-oasis): give --data.root the unpacked download itself (--data.layout names one)"
        )

    def find_splits(self) -> Splits:
        return self.learn2reg() if self.resolved_layout() == "learn2reg" else self.neurite()

    # ---------------------------------------------------------------------------------- Learn2Reg
    def learn2reg(self) -> Splits:
        if self.dims != 3:
            raise ValueError(
                "the Learn2Reg OASIS layout holds 3D volumes only: set --data.dims 3 "
                "(2D slices come with the neurite-oasis layout)"
            )
        manifest = self.root / "OASIS_dataset.json"
        if not manifest.is_file():
            raise ValueError(f"{manifest} not found: the Learn2Reg layout needs its dataset JSON")
        try:
            description = json.loads(manifest.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{manifest} is not valid JSON: {error}") from None
        labels = {}
        for entry in description.get("training", []):
            if "image" not in entry or "label" not in entry:
                raise ValueError(f"{manifest}: a 'training' entry lacks 'image' or 'label': {entry}")
            labels[self._resolve(entry["image"], manifest)] = self._resolve(entry["label"], manifest)
        pairs = []
        for entry in description.get("registration_val", []):
            if "fixed" not in entry or "moving" not in entry:
                raise ValueError(f"{manifest}: a 'registration_val' entry lacks 'fixed' or 'moving': {entry}")
            pairs.append(
                (self._labelled(entry["fixed"], labels, manifest), self._labelled(entry["moving"], labels, manifest))
            )
        if not labels:
            raise ValueError(f"{manifest} lists no 'training' images")
        if not pairs:
            raise ValueError(f"{manifest} lists no 'registration_val' pairs")
        held_out = {record.image for pair in pairs for record in pair}
        train = [
            ImageRecord(_name(image), image, seg) for image, seg in sorted(labels.items()) if image not in held_out
        ]
        return Splits(train_subjects=train, val=pairs, test=pairs)

    def _resolve(self, relative: str, manifest: Path) -> Path:
        path = confined(self.root, str(relative), str(manifest)).resolve()
        if not path.is_file():
            raise ValueError(f"{manifest} refers to {relative}, which is not in {self.root}")
        return path

    def _labelled(self, image: str, labels: dict[Path, Path], manifest: Path) -> ImageRecord:
        path = self._resolve(image, manifest)
        seg = labels.get(path, path.parent.parent / "labelsTr" / path.name)
        if not seg.is_file():
            raise ValueError(f"{manifest}: no label map for {image} (looked for {seg}); evaluation needs labels")
        return ImageRecord(_name(path), path, seg)

    # ---------------------------------------------------------------------------------- neurite
    def neurite(self) -> Splits:
        names = self._subject_names()
        subjects = []
        for name in names:
            folder = self.root / name
            image, seg = folder / self.image_file, folder / self.seg_file
            for path in (image, seg):
                if not path.is_file():
                    raise ValueError(f"subject {name} has no {path.name} in {folder}")
            subjects.append(ImageRecord(name.replace("OASIS_", "").replace("_MR1", ""), image, seg))
        return held_out_splits(
            [[subject] for subject in subjects],
            self.val_subjects,
            self.test_subjects,
            f"OASIS subjects found in {self.root}",
        )

    def _subject_names(self) -> list[str]:
        listing = Path(self.subject_list) if self.subject_list else self.root / "subjects.txt"
        if self.subject_list and not listing.is_file():
            raise ValueError(f"subject list {listing} not found")
        if listing.is_file():
            names = []
            for number, line in enumerate(listing.read_text().splitlines(), 1):
                if line.strip():
                    names.append(confined(self.root, line.strip(), f"{listing}, line {number}", single=True).name)
        else:
            names = sorted(path.name for path in self.root.glob("OASIS_OAS1_*_MR1") if path.is_dir())
        if not names:
            raise ValueError(
                f"no OASIS subjects in {self.root}: expected OASIS_OAS1_XXXX_MR1 folders or a subjects.txt"
            )
        return names
