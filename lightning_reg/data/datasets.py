"""Datasets of image pairs read from files through a torchio pipeline: fixed pairs (validation,
test, manifests) and random pairs of distinct subjects (training)."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any, Sequence

import torch
import torchio as tio
from nibabel.filebasedimages import ImageFileError
from torch.utils.data import Dataset, default_collate

from ..errors import InputError
from ..files.landmarks import read_landmarks
from .shifts import apply_seeded
from .subjects import ImageRecord, load_subject, subject_tensors, tensor_subject

Pair = tuple[ImageRecord, ImageRecord]

#: what reading a damaged file raises: torchio, nibabel, gzip and zlib (truncated, corrupt, changed
#: since the data module checked it) and our reader (NaN voxels)
READ_ERRORS = (RuntimeError, OSError, EOFError, ValueError, zlib.error, ImageFileError)


class UnreadableImage(InputError):
    """An image or label map that cannot be read (any more): names the file and the reason."""


@dataclass
class Pipeline:
    """What happens to each image: ``preprocess`` (orientation, spacing, labels, size,
    normalization), then either the random training ``augment`` or the seeded test ``shift``, each
    followed by ``renormalize``."""

    dims: int
    preprocess: tio.Compose
    augment: tio.Compose | None = None
    shift: tio.Compose | None = None
    renormalize: tio.Compose | None = None

    def __call__(self, record: ImageRecord, seed: int) -> dict[str, torch.Tensor]:
        try:
            subject = self.preprocess(load_subject(record))
        except READ_ERRORS as error:
            others = [str(path) for path in (record.seg, record.mask) if path is not None]
            files = f"{record.image} (or {', '.join(others)})" if others else record.image
            raise UnreadableImage(f"cannot load {files}: {type(error).__name__}: {error}") from None
        if self.augment is not None:
            subject = self.augment(subject)
        if self.shift is not None:
            subject = apply_seeded(self.shift, subject, seed)
        if self.renormalize is not None and (self.augment is not None or self.shift is not None):
            subject = self.renormalize(subject)
        try:
            tensors = subject_tensors(subject, self.dims, str(record.image))
        except ValueError as error:  # NaN or constant after preprocessing: the file's content
            raise UnreadableImage(str(error)) from None
        # world points keep their meaning through reorientation, resampling and cropping, not through
        # a random spatial augmentation: augmented (training) images carry none
        if record.landmarks is not None and self.augment is None:
            tensors["landmarks"] = read_landmarks(record.landmarks, self.dims)
        return tensors


def pair_item(fixed: dict, moving: dict, pair_id: str) -> dict:
    """A batch item in the module's convention (``fixed``, ``moving``, ``*_seg``, ``*_affine``, ``id``;
    ``*_mask`` where an image has one; ``*_landmarks`` where both have them)."""
    item = {
        "fixed": fixed["image"],
        "moving": moving["image"],
        "fixed_affine": fixed["affine"],
        "moving_affine": moving["affine"],
        "id": pair_id,
    }
    for key in ("seg", "landmarks"):
        if key in fixed and key in moving:
            item[f"fixed_{key}"], item[f"moving_{key}"] = fixed[key], moving[key]
    for role, tensors in (("fixed", fixed), ("moving", moving)):
        if "mask" in tensors:
            item[f"{role}_mask"] = tensors["mask"]
    return item


def pair_seed(seed: int, index: int, role: int) -> int:
    """The seed of image ``role`` (0 fixed, 1 moving) of pair ``index``."""
    return seed * 1_000_003 + 2 * index + role


def distinct_ids(ids: Sequence[str]) -> list[str]:
    """``ids`` with each repeat numbered (the second ``a_b`` is ``a_b-2``), so that no two pairs
    share a row in ``test_metrics.csv`` or a folder of ``predict``."""
    seen: dict[str, int] = {}
    taken = set(ids)
    distinct = []
    for pair_id in ids:
        seen[pair_id] = seen.get(pair_id, 0) + 1
        candidate, number = pair_id, seen[pair_id]
        while number > 1 and (candidate := f"{pair_id}-{number}") in taken:
            number += 1
        taken.add(candidate)
        distinct.append(candidate)
    return distinct


class FixedPairs(Dataset):
    """The given pairs, in order; item ``i`` is ``pairs[i]`` through ``pipeline``, its id
    ``<fixed name>_<moving name>`` (numbered where pairs repeat: :func:`distinct_ids`)."""

    def __init__(self, pairs: Sequence[Pair], pipeline: Pipeline, seed: int = 0) -> None:
        self.pairs, self.pipeline, self.seed = list(pairs), pipeline, seed
        self.ids = distinct_ids([f"{fixed.name}_{moving.name}" for fixed, moving in self.pairs])

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        fixed, moving = self.pairs[index]
        return pair_item(
            self.pipeline(fixed, pair_seed(self.seed, index, 0)),
            self.pipeline(moving, pair_seed(self.seed, index, 1)),
            self.ids[index],
        )


class SubjectPairs(Dataset):
    """Every ordered pair of distinct subjects: item ``k`` is subject ``k // (n-1)`` as fixed and
    the ``k % (n-1)``-th other subject as moving. A random sampler draws the training pairs."""

    def __init__(self, subjects: Sequence[ImageRecord], pipeline: Pipeline) -> None:
        if len(subjects) < 2:
            raise ValueError(f"training needs at least 2 subjects to make pairs, found {len(subjects)}")
        self.subjects, self.pipeline = list(subjects), pipeline

    def __len__(self) -> int:
        count = len(self.subjects)
        return count * (count - 1)

    def __getitem__(self, index: int) -> dict:
        fixed, other = divmod(index, len(self.subjects) - 1)
        moving = other + (other >= fixed)
        pair = self.subjects[fixed], self.subjects[moving]
        return pair_item(
            self.pipeline(pair[0], 2 * index), self.pipeline(pair[1], 2 * index + 1), f"{pair[0].name}_{pair[1].name}"
        )


class ReadablePairs(Dataset):
    """Training pairs that go on past damaged files: item ``i`` is the first pair of ``dataset`` at
    ``i, i + 1, ...`` whose files read, with the messages of those skipped in ``item["unreadable"]``
    (newline-separated; empty when none). ``max_tries`` unreadable pairs in a row are an error."""

    def __init__(self, dataset: Any, max_tries: int = 8) -> None:  # a Dataset with a length
        self.dataset, self.max_tries = dataset, max_tries

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict:
        failures = []
        for attempt in range(min(self.max_tries, len(self.dataset))):
            try:
                item = self.dataset[(index + attempt) % len(self.dataset)]
            except UnreadableImage as error:
                failures.append(str(error))
                continue
            return {**item, "unreadable": "\n".join(failures)}
        raise InputError(f"{len(failures)} training pairs in a row could not be read; the last: {failures[-1]}")


def collate_pairs(items: list[dict]) -> dict:
    """``default_collate``, with a clear error when the pairs of one batch differ in size; landmarks
    (a different count per pair) stay a list of ``[N, d]`` tensors."""
    shapes = {(tuple(item["fixed"].shape), tuple(item["moving"].shape)) for item in items}
    if len(shapes) > 1:
        raise ValueError(
            f"the pairs of one batch have different shapes {sorted(shapes)}: set --data.size to "
            f"pad/crop every image to one size, or use --data.batch_size 1"
        )
    keys = {key for item in items for key in item}
    if any(set(item) != keys for item in items):
        raise ValueError(
            f"the pairs of one batch carry different entries ({sorted(keys)}): give every pair the "
            f"same masks and landmarks, or use --data.batch_size 1"
        )
    lists = {key: [item.pop(key) for item in items] for key in ("fixed_landmarks", "moving_landmarks") if key in keys}
    return {**default_collate(items), **lists}


def shifted_item(item: dict, shift: tio.Transform, seed: int) -> dict:
    """A batch item of tensors with ``shift`` applied to both images (seeded per image; labels kept)."""
    shifted = dict(item)
    dims = item["fixed"].dim() - 1
    for role in (0, 1):
        key = ("fixed", "moving")[role]
        subject = tensor_subject(item[key], item.get(f"{key}_seg"), item.get(f"{key}_affine"))
        subject = apply_seeded(shift, subject, pair_seed(seed, 0, role))
        tensors = subject_tensors(subject, dims, f"{key} of {item['id']}")
        shifted[key] = tensors["image"]
    return shifted
