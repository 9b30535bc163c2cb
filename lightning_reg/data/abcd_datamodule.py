"""BIDS-organized collections such as ABCD: T1w images under ``sub-*/[ses-*/]anat/`` and label maps
from a derivatives pipeline (``*_dseg.nii.gz``, or FreeSurfer's aseg converted to NIfTI)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from lightning.pytorch.utilities import rank_zero_warn

from .file_datamodule import FileDataModule, Splits, held_out_splits
from .subjects import ImageRecord

ENTITY = re.compile(r"(sub|ses|acq|run|space)-([a-zA-Z0-9]+)")


def entities(path: Path) -> dict[str, str]:
    """BIDS entities ``sub``, ``ses``, ``acq``, ``run``, ``space`` in ``path`` (folders and file name)."""
    found: dict[str, str] = {}
    for part in path.parts:
        for key, value in ENTITY.findall(part):
            found[key] = value
    return found


class ABCDDataModule(FileDataModule):
    """Pairs of T1w scans of distinct subjects from a BIDS tree with segmentations in derivatives.

    Args:
        root: the BIDS dataset folder (holding ``sub-*`` and ``derivatives``).
        image_glob: T1w images, relative to ``root`` (``**`` allows an optional ``ses-*`` level); may
            point into derivatives, e.g. fMRIPrep's ``*_space-MNI152NLin2009cAsym_desc-preproc_T1w``.
        derivatives: the derivatives pipeline folder(s), relative to ``root``, a glob
            (``derivatives/freesurfer``, ``derivatives/*``).
        seg_glob: the label map's file name in the pipeline's ``sub-*/[ses-*/]...`` folders, e.g.
            ``*_desc-aseg_dseg.nii.gz`` (fMRIPrep) or ``aseg.nii.gz`` (FreeSurfer, converted to NIfTI).
        val_subjects: subjects held out for validation (before the test subjects, sorted by id);
            consecutive ones make the pairs (each subject's first scan).
        test_subjects: the last subjects (sorted by id), held out for the test pairs.
        **kwargs: preprocessing, augmentation, shift and loader options of :class:`FileDataModule`
            (``label_lookup="aseg"`` maps FreeSurfer codes to 35 contiguous labels).

    Scans with no label map are skipped, with one warning saying how many.
    """

    def __init__(
        self,
        root: str | Path | None = None,
        image_glob: str = "sub-*/**/anat/*_T1w.nii.gz",
        derivatives: str = "derivatives/*",
        seg_glob: str = "*_dseg.nii.gz",
        val_subjects: int = 5,
        test_subjects: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if root is None:
            raise ValueError(
                "ABCDDataModule needs the BIDS folder: --data.root PATH (sub-*/[ses-*/]anat/*_T1w.nii.gz, "
                "label maps under derivatives/: --data.derivatives, --data.seg_glob)"
            )
        if val_subjects < 2 or test_subjects < 2:
            raise ValueError(f"val_subjects and test_subjects must be >= 2, got {val_subjects}, {test_subjects}")
        self.root, self.image_glob, self.derivatives, self.seg_glob = Path(root), image_glob, derivatives, seg_glob
        self.val_subjects, self.test_subjects = val_subjects, test_subjects
        self.scan()

    def find_splits(self) -> Splits:
        if not self.root.is_dir():
            raise ValueError(f"BIDS root {self.root} is not a folder; point --data.root at the dataset")
        images = sorted(self.root.glob(self.image_glob))
        if not images:
            raise ValueError(f"no images match {self.image_glob!r} under {self.root}")
        pipelines = [path for path in self.root.glob(self.derivatives) if path.is_dir()]
        if not pipelines:
            raise ValueError(f"no derivatives folder matches {self.derivatives!r} under {self.root}")
        records, missing = [], []
        for image in images:
            seg = self._segmentation(image, pipelines)
            if seg is None:
                missing.append(image)
            else:
                found = entities(image.relative_to(self.root))
                name = "_".join(f"{key}-{found[key]}" for key in ("sub", "ses", "acq", "run") if key in found)
                records.append(ImageRecord(name, image, seg))
        if missing:
            rank_zero_warn(
                f"{len(missing)} of {len(images)} scans have no label map matching {self.seg_glob!r} "
                f"in {self.derivatives} and are skipped (first: {missing[0].relative_to(self.root)})"
            )
        return self._split(records)

    def _segmentation(self, image: Path, pipelines: list[Path]) -> Path | None:
        wanted = entities(image.relative_to(self.root))
        candidates = []
        for pipeline in pipelines:
            folder = pipeline / f"sub-{wanted['sub']}" if "sub" in wanted else pipeline
            for path in folder.glob(f"**/{self.seg_glob}"):
                theirs = entities(path.relative_to(pipeline))
                if all(theirs.get(key) == wanted.get(key) for key in ("sub", "ses") if key in wanted):
                    candidates.append(path)
        if len(candidates) > 1:  # prefer the one that shares acq-/run-/space- with the image
            closer = [
                path for path in candidates if all(entities(path).get(key) == value for key, value in wanted.items())
            ]
            candidates = closer or candidates
        if len(candidates) > 1:
            names = ", ".join(sorted(path.name for path in candidates)[:4])
            raise ValueError(
                f"{image.name}: several label maps match {self.seg_glob!r} ({names}); make "
                f"--data.seg_glob more specific, e.g. '*_desc-aseg_dseg.nii.gz'"
            )
        return candidates[0] if candidates else None

    def _split(self, records: list[ImageRecord]) -> Splits:
        subjects: dict[str, list[ImageRecord]] = {}
        for record in records:
            subjects.setdefault(record.name.split("_")[0], []).append(record)
        return held_out_splits(
            [subjects[subject] for subject in sorted(subjects)],
            self.val_subjects,
            self.test_subjects,
            f"subjects with label maps under {self.root}",
        )
