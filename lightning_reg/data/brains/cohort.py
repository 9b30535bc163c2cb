"""Who is who: the six Allen Human Brain Atlas donors and fsaverage, and the held-out rule."""

from __future__ import annotations

from itertools import permutations
from typing import Iterable

from ...errors import InputError

DONORS = ("9861", "10021", "12876", "14380", "15496", "15697")
#: test subjects only: never trained, tuned, used to pick defaults or checkpoints
HELD_OUT = ("15496", "15697", "fsaverage")
#: real-intensity templates (tissue labels only): the real-T1 contrast test, never training data
TEMPLATES = ("icbm152", "cat12")
#: the training and validation donors (the validation donor tunes; the rest train)
TRAIN_DONORS = ("9861", "10021", "12876")
VAL_DONORS = ("14380",)
SUBJECTS = (*DONORS, "fsaverage")


def refuse_held_out(subjects: Iterable[str], split: str) -> None:
    """Raise when a held-out subject is asked for in a training or validation split."""
    found = sorted(set(subjects) & {*HELD_OUT, *TEMPLATES})
    if found:
        held_out = ", ".join((*HELD_OUT, *TEMPLATES))
        raise InputError(
            f"{', '.join(found)} are held-out test subjects and may not enter the {split} split "
            f"(held out: {held_out}); train on {', '.join(TRAIN_DONORS)} and tune on "
            f"{', '.join(VAL_DONORS)}"
        )


def held_out_pairs() -> list[tuple[str, str]]:
    """Every ordered pair of held-out subjects ``(fixed, moving)``."""
    return list(permutations(HELD_OUT, 2))


#: the subjects of the real-T1 test, in pair order (fsaverage is held out; the templates are test-only)
REAL_T1 = ("fsaverage", "icbm152", "cat12")
#: the labels of their tissue maps
TISSUE_LABELS = {1: "grey matter", 2: "white matter"}


def tissue_pairs() -> list[tuple[str, str]]:
    """Every ordered pair of :data:`REAL_T1` ``(fixed, moving)``."""
    return list(permutations(REAL_T1, 2))
