"""Structure classes of a label map, for pre-training features without the solver: one class per aseg
structure, except that the cortex (both hemispheres, and every DK parcel of the donors) is one class
and the white matter (both hemispheres, and the unlabelled inside of the brain) another, so the two
label families name the same tissue alike. Class 0 is the background; :data:`IGNORED` marks voxels
without a structure (random shapes)."""

from __future__ import annotations

import torch

from .grid import TISSUE
from .label_maps import ASEG_STRUCTURES

BACKGROUND, CORTEX, WHITE = 0, 1, 2
#: the aseg structures with a class of their own, in the order of their classes
OWN_CLASS = tuple(label for label in ASEG_STRUCTURES if label not in (2, 3, 41, 42))
#: how many classes there are (background included)
STRUCTURE_CLASSES = 3 + len(OWN_CLASS)
#: the class of voxels that name no structure (the loss leaves them out)
IGNORED = -1


def structure_table(family: str) -> torch.Tensor:
    """The class of every label ``0..TISSUE`` of a label ``family``: ``aseg``, ``dk`` (every parcel
    cortex) or ``shapes`` (random shapes: every label :data:`IGNORED`)."""
    table = torch.full((TISSUE + 1,), BACKGROUND, dtype=torch.long)
    if family == "aseg":
        table[[3, 42]] = CORTEX
        table[[2, 41]] = WHITE
        table[list(OWN_CLASS)] = torch.arange(3, STRUCTURE_CLASSES)
    elif family == "dk":
        table[1:TISSUE] = CORTEX
    elif family == "shapes":
        table[:] = IGNORED
        return table
    else:
        raise ValueError(f"unknown label family {family!r}; choose aseg, dk or shapes")
    table[TISSUE] = WHITE
    return table
