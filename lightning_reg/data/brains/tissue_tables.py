"""Tissue-realistic contrasts for training renderings: T1-, T2- and PD-like intensity tables by tissue
class, with structures of one tissue nearly alike and the deep grey matter only faintly apart from
white matter, as in real MRI (random per-label intensities, SynthMorph's, make every boundary sharp).
Each rendering perturbs the table, so no two are the same."""

from __future__ import annotations

import torch

from .grid import TISSUE

WHITE, CORTEX, DEEP, FLUID = 1, 2, 3, 4
#: mean intensity of each tissue class by contrast (background 0)
TABLES = {
    "t1": {WHITE: 0.90, CORTEX: 0.55, DEEP: 0.72, FLUID: 0.15},
    "t2": {WHITE: 0.35, CORTEX: 0.60, DEEP: 0.50, FLUID: 1.00},
    "pd": {WHITE: 0.70, CORTEX: 0.85, DEEP: 0.80, FLUID: 0.95},
}
#: FreeSurfer aseg labels by tissue class (the rest of the brain, and TISSUE, counts as white matter)
ASEG_CLASSES = {
    CORTEX: (3, 42, 8, 47, 17, 53, 18, 54),
    DEEP: (10, 49, 11, 50, 12, 51, 13, 52, 26, 58),
    FLUID: (4, 5, 14, 15, 24, 43, 44),
}
#: how far one table's class means move per rendering, and one label's from its class
CLASS_JITTER = 0.08
LABEL_JITTER = 0.03


def tissue_classes(family: str) -> torch.Tensor:
    """The tissue class of every label ``0..TISSUE`` of a label ``family``: ``aseg`` (the structures
    above) or ``dk`` (every parcel cortex, the unlabelled inside white matter)."""
    classes = torch.full((TISSUE + 1,), WHITE, dtype=torch.long)
    classes[0] = 0
    if family == "dk":
        classes[1:TISSUE] = CORTEX
    elif family == "aseg":
        for tissue, labels in ASEG_CLASSES.items():
            classes[list(labels)] = tissue
    else:
        raise ValueError(f"unknown label family {family!r}; choose aseg or dk")
    return classes


def table_means(family: str, contrast: str, generator: torch.Generator) -> torch.Tensor:
    """Intensity of every label ``0..TISSUE`` for one rendering: the ``contrast`` table's class means,
    each moved by up to :data:`CLASS_JITTER`, each label by up to :data:`LABEL_JITTER` more."""
    table = TABLES[contrast]
    classes = tissue_classes(family)
    moved = {
        tissue: mean + CLASS_JITTER * (2 * float(torch.rand(1, generator=generator)) - 1)
        for tissue, mean in table.items()
    }
    means = torch.tensor([0.0 if tissue == 0 else moved[int(tissue)] for tissue in classes])
    means = means + LABEL_JITTER * (2 * torch.rand(len(means), generator=generator) - 1)
    means[0] = 0.0
    return means.clamp(0.02, 1.0) * (classes > 0)
