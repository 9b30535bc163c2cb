"""Training on real anatomy without its scans, SynthMorph style: each pair is two random warps (smooth
velocity field and affine jitter) of training anatomies' label maps (the donors' DK maps, and aseg label
maps of a folder the user points to: ``label_maps.py``), each rendered with a random or tissue-realistic
contrast, blur, bias and noise. Validation renders the validation donor the same way (fixed seeds); the test
split is the held-out pairs the builder wrote. Held-out subjects are refused in training and validation."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ...errors import InputError
from ...files.nifti import nifti_image
from ...solver.geometry.spatial import exponentiate, field_to_grid, identity_grid, sample
from ..base_datamodule import PairDataModule
from ..sampling import evaluation_sampler, training_sampler
from ..synthetic import random_labels, random_velocity
from ..synthmorph import SynthSettings, random_means, render
from .anisotropy import SLAB_MM, thicken
from .cohort import TRAIN_DONORS, VAL_DONORS, held_out_pairs, refuse_held_out, tissue_pairs
from .grid import GRID_SHAPE, TISSUE, grid_affine, with_tissue
from .label_maps import label_map_names, read_label_map
from .structures import structure_table
from .tissue_tables import TABLES, table_means

#: the axial slice of a 2D pair: the grid's centre, +- this many slices in training
SLICE_JITTER = 12
#: seed offsets of the splits (disjoint pairs)
OFFSETS = {"train": 0, "val": 1_000_000}


def read_labels(root: Path, subject: str) -> np.ndarray:
    """``root/labels/<subject>.nii.gz`` as int64, with a clear error when the builder has not run."""
    path = root / "labels" / f"{subject}.nii.gz"
    if not path.is_file():
        raise InputError(f"{path} not found: build the folder first (python -m lightning_reg.anatomy {root})")
    return np.asarray(nifti_image(path).dataobj).astype(np.int64)


def slice_affine(dims: int) -> torch.Tensor:
    """Voxel-to-world of the common grid, 3D, or in-plane (x, y) for an axial 2D slice."""
    affine = grid_affine()
    if dims == 2:
        affine = affine[np.ix_([0, 1, 3], [0, 1, 3])]
    return torch.as_tensor(affine, dtype=torch.float32)


def random_affine_grid(
    grid: torch.Tensor, generator: torch.Generator, rotation: float, scaling: float, shift: float
) -> torch.Tensor:
    """``grid`` ``[1, *S, d]`` (normalized) moved by a random rigid-plus-scale map about the centre:
    rotations up to ``rotation`` degrees about each axis, scales within ``1 +- scaling``, shifts up to
    ``shift`` voxels; built in voxel units so it is a true rotation on a non-cubic grid."""
    shape = grid.shape[1:-1]
    dims = len(shape)

    def uniform(size: int) -> torch.Tensor:
        return 2 * torch.rand(size, generator=generator, dtype=torch.float64) - 1

    angles = uniform(1 if dims == 2 else 3) * math.radians(rotation)
    matrix = torch.eye(dims, dtype=torch.float64)
    for axis, angle in enumerate(angles):
        i, j = [(0, 1), (0, 2), (1, 2)][axis]
        turn = torch.eye(dims, dtype=torch.float64)
        turn[i, i] = turn[j, j] = torch.cos(angle)
        turn[i, j], turn[j, i] = -torch.sin(angle), torch.sin(angle)
        matrix = turn @ matrix
    matrix = matrix @ torch.diag(1 + scaling * uniform(dims))
    half = torch.tensor([(n - 1) / 2 for n in shape][::-1], dtype=torch.float64)  # grid's last axis is (x, y, z)
    normalized = torch.diag(1 / half) @ matrix @ torch.diag(half)
    offset = shift * uniform(dims) / half
    return (grid.double() @ normalized.T + offset).to(grid.dtype)


def check_crop(crop: Sequence[int] | None, shape: Sequence[int]) -> None:
    """A crop has one positive size per axis of ``shape``, none larger than it."""
    if crop is None:
        return
    if len(crop) != len(shape) or min(crop) < 8:
        raise ValueError(f"crop needs {len(shape)} sizes of at least 8 voxels, got {list(crop)}")
    if any(c > n for c, n in zip(crop, shape)):
        raise ValueError(f"crop {list(crop)} is larger than the grid {list(shape)}")


class BrainPairs(Dataset):
    """``count`` rendered pairs of ``subjects``; pair ``i`` is drawn from seed ``first_seed + i``.
    Each side has its image, label map (``*_seg``, what the loss and Dice score) and structure classes
    (``*_structures``: ``structures.py``, what feature pre-training regresses).

    Args:
        maps: label maps with :data:`TISSUE` by subject, ``[1, 1, *S]`` int64 (3D).
        dims: 3, or 2 for axial slices.
        settings: rendering (contrast, blur, noise, bias) and warp sizes (voxels).
        shapes: share of pairs drawn from random shapes instead of a donor (SynthMorph's "shapes").
        rotation, scaling, shift: affine jitter of each image (degrees, fraction, voxels).
        crop: size of a random window cut from both images of a pair (the same window; cheaper training
            steps); none: the whole grid.
        anisotropy: share of pairs whose moving image is stored with slices 3-7 mm thick along a random
            axis, on its own grid with its own header (``anisotropy.thicken``).
        same_contrast: share of pairs whose two images share one random contrast (same-modality
            pairs); the others render each image with its own (SynthMorph's cross-contrast pairs).
        families: the label family of each subject (``dk`` or ``aseg``; default ``dk``): pairs join
            two subjects of one family only, whose labels then mean the same structures.
        tissue_contrast: share of contrasts drawn from the T1-, T2- and PD-like tissue tables
            (``tissue_tables.py``) instead of random per-label intensities.
    """

    def __init__(
        self,
        maps: dict[str, torch.Tensor],
        dims: int,
        settings: SynthSettings,
        count: int,
        first_seed: int,
        split: str,
        shapes: float = 0.0,
        rotation: float = 6.0,
        scaling: float = 0.06,
        shift: float = 3.0,
        crop: Sequence[int] | None = None,
        anisotropy: float = 0.0,
        same_contrast: float = 0.0,
        families: dict[str, str] | None = None,
        tissue_contrast: float = 0.0,
    ) -> None:
        self.maps, self.dims, self.settings, self.count = maps, dims, settings, count
        self.families = {subject: (families or {}).get(subject, "dk") for subject in maps}
        self.tissue_contrast = tissue_contrast
        self.first_seed, self.split, self.shapes = first_seed, split, shapes
        self.jitter = (rotation, scaling, shift)
        self.affine = slice_affine(dims)
        self.crop = None if crop is None else tuple(int(n) for n in crop)
        self.anisotropy, self.same_contrast = anisotropy, same_contrast

    def __len__(self) -> int:
        return self.count

    def _labels(self, generator: torch.Generator) -> tuple[str, str, torch.Tensor, torch.Tensor]:
        subjects = sorted(self.maps)
        first = subjects[int(torch.randint(len(subjects), (1,), generator=generator))]
        kin = [subject for subject in subjects if self.families[subject] == self.families[first]]
        second = (
            first
            if float(torch.rand(1, generator=generator)) < 0.5
            else kin[int(torch.randint(len(kin), (1,), generator=generator))]
        )
        maps = [self.maps[first], self.maps[second]]
        if float(torch.rand(1, generator=generator)) < self.shapes:
            first = second = "shapes"
            shape = maps[0].shape[2:]
            maps = [random_labels(shape, TISSUE, 6.0, generator)] * 2
        if self.dims == 2:
            centre = maps[0].shape[-1] // 2
            index = centre + int(torch.randint(-SLICE_JITTER, SLICE_JITTER + 1, (1,), generator=generator))
            maps = [labels[..., index] for labels in maps]
        return first, second, maps[0], maps[1]

    def _warped(self, labels: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        shape = labels.shape[2:]
        velocity = random_velocity(shape, self.settings.warp_magnitude, self.settings.warp_smoothness, generator)
        grid = identity_grid(shape) + field_to_grid(exponentiate(velocity))
        grid = random_affine_grid(grid, generator, *self.jitter)
        return sample(labels.float(), grid, mode="nearest").long()

    def _window(self, shape: Sequence[int], generator: torch.Generator) -> tuple[tuple[slice, ...], torch.Tensor]:
        """Index of a random ``crop`` window of ``shape`` and the affine of the window's voxels."""
        if self.crop is None:
            return tuple(slice(None) for _ in shape), self.affine
        start = [int(torch.randint(n - c + 1, (1,), generator=generator)) for c, n in zip(self.crop, shape)]
        affine = self.affine.clone()
        affine[:-1, -1] += affine[:-1, :-1] @ torch.tensor(start, dtype=affine.dtype)
        return tuple(slice(a, a + c) for a, c in zip(start, self.crop)), affine

    def _means(self, family: str, generator: torch.Generator) -> torch.Tensor | None:
        """One rendering's intensity per label: a perturbed tissue table (a share ``tissue_contrast``,
        drawn only then, so the pairs of a share of 0 stay those of earlier versions) or random ones."""
        if self.tissue_contrast > 0 and float(torch.rand(1, generator=generator)) < self.tissue_contrast:
            contrast = sorted(TABLES)[int(torch.randint(len(TABLES), (1,), generator=generator))]
            return table_means("dk" if family == "shapes" else family, contrast, generator)
        return random_means(TISSUE, generator)

    def __getitem__(self, index: int) -> dict:
        if not 0 <= index < self.count:
            raise IndexError(index)
        seed = self.first_seed + index
        generator = torch.Generator().manual_seed(seed)
        first, second, *drawn = self._labels(generator)
        window, affine = self._window(drawn[0].shape[2:], generator)
        crop: tuple[Any, ...] = (..., *window)
        maps: list[torch.Tensor] = [labels[crop] for labels in drawn]
        item: dict[str, Any] = {"id": f"{self.split}-{seed}-{first}-{second}", "fixed_affine": affine}
        item["moving_affine"] = affine
        # drawn only when asked for, so the pairs of a share of 0 stay those of earlier versions
        shared = self.same_contrast > 0 and float(torch.rand(1, generator=generator)) < self.same_contrast
        family = self.families.get(first, "dk")
        means = self._means(family, generator) if shared else None
        structures = structure_table("shapes" if first == "shapes" else family)
        for role, labels in zip(("fixed", "moving"), maps):
            warped = self._warped(labels, generator)
            contrast = means if shared else self._means(family, generator)
            item[role] = render(warped, self.settings, generator, contrast)[0]
            item[f"{role}_seg"] = torch.where(warped == TISSUE, 0, warped)[0]
            item[f"{role}_structures"] = structures[warped[0]]
        if float(torch.rand(1, generator=generator)) < self.anisotropy:
            axis = int(torch.randint(self.dims, (1,), generator=generator))
            millimetres = float(torch.empty(1).uniform_(*SLAB_MM, generator=generator))
            spacing = float(item["moving_affine"][:-1, axis].norm())
            both = torch.cat([item["moving_seg"], item["moving_structures"]])
            item["moving"], both, item["moving_affine"] = thicken(
                item["moving"], both, item["moving_affine"], axis, max(millimetres / spacing, 1.0)
            )
            item["moving_seg"], item["moving_structures"] = both[:1], both[1:]
        return item


class HeldOutPairs(Dataset):
    """The builder's held-out test pairs, 2D: the axial slice through the grid's centre.

    ``test``: ``dk``, the AHBA/fsaverage pairs (``held_out_pairs``) scored on the 82 DK labels, images
    rendered with ``recipe`` (``t1like``, ``t2like``); or ``tissue``, the real-T1 pairs of fsaverage
    and the ICBM152 and CAT12 templates (``tissue_pairs``) scored on grey and white matter, ``recipe``
    ``real`` (their T1 intensities) or ``t1like`` (their tissue maps rendered, the clean reference);
    or ``mni``, the ``dk`` pairs pre-aligned to MNI space (``mni.py``), the slice through MNI z = 0.
    """

    RECIPES = {"dk": ("t1like", "t2like"), "tissue": ("real", "t1like"), "mni": ("t1like", "t2like")}

    def __init__(self, root: Path, dims: int, recipe: str = "t1like", test: str = "dk") -> None:
        if test not in self.RECIPES:
            raise InputError(f"unknown test set {test!r}; choose one of {', '.join(self.RECIPES)}")
        if recipe not in self.RECIPES[test]:
            raise InputError(f"the {test} test has the recipes {', '.join(self.RECIPES[test])}, not {recipe!r}")
        self.root, self.dims, self.recipe, self.test = Path(root), dims, recipe, test
        self.pairs = tissue_pairs() if test == "tissue" else held_out_pairs()
        self.affine = slice_affine(dims)

    def __len__(self) -> int:
        return len(self.pairs)

    def _paths(self, subject: str) -> tuple[Path, Path]:
        if self.test == "dk":
            return self.root / "images" / f"{subject}_{self.recipe}.nii.gz", self.root / "labels" / f"{subject}.nii.gz"
        if self.test == "mni":
            return self.root / "mni" / f"{subject}_{self.recipe}.nii.gz", self.root / "mni" / f"{subject}_labels.nii.gz"
        name = "T1" if self.recipe == "real" else self.recipe
        return self.root / "tissue" / f"{subject}_{name}.nii.gz", self.root / "tissue" / f"{subject}_labels.nii.gz"

    def _read(self, subject: str) -> tuple[torch.Tensor, torch.Tensor]:
        paths = self._paths(subject)
        for path in paths:
            if not path.is_file():
                raise InputError(
                    f"{path} not found: build the folder first (python -m lightning_reg.anatomy "
                    f"{self.root}; with --overwrite for a folder an earlier version built)"
                )
        image, labels = (torch.as_tensor(np.asarray(nifti_image(path).dataobj))[None] for path in paths)
        image, labels = image.float(), labels.long()
        if self.dims == 2:
            image, labels = image[..., image.shape[-1] // 2], labels[..., labels.shape[-1] // 2]
        return image, labels

    def __getitem__(self, index: int) -> dict:
        fixed, moving = self.pairs[index]
        (fixed_image, fixed_seg), (moving_image, moving_seg) = self._read(fixed), self._read(moving)
        return {
            "id": f"{fixed}-{moving}",
            "fixed": fixed_image,
            "moving": moving_image,
            "fixed_seg": fixed_seg,
            "moving_seg": moving_seg,
            "fixed_affine": self.affine,
            "moving_affine": self.affine,
        }


class BrainDataModule(PairDataModule):
    """Real anatomy (the folder ``python -m lightning_reg.anatomy ROOT`` writes), 2D or 3D at 2 mm.

    Args:
        root: the built folder.
        dims: 3 (96x112x96 volumes) or 2 (axial 96x112 slices, 2 mm pixels).
        train_subjects: donors rendered for training; the held-out subjects (``cohort.HELD_OUT``)
            are refused.
        val_subjects: donors rendered for validation (held-out subjects refused).
        train_pairs: training pairs per epoch.
        val_pairs: validation pairs (test: the 6 held-out pairs).
        shapes: share of training pairs from random shapes instead of donors.
        warp_magnitude: RMS size of each image's random warp (voxels).
        warp_smoothness: spatial scale of each image's random warp (voxels).
        rotation: each image's largest random rotation (degrees).
        scaling: each image's largest random scaling (fraction).
        shift: each image's largest random translation (voxels).
        blur: largest blur sigma of the renderings (voxels).
        noise: largest noise standard deviation of the renderings.
        bias: largest bias field amplitude of the renderings.
        crop: training window size (voxels) cut from each pair, e.g. 64 64 64; none: the whole grid.
        anisotropy: share of training pairs whose moving image has slices 3-7 mm thick (uniform) along
            a random axis, on its native grid (teaches features for clinical thick-slice scans).
        same_contrast: share of training and validation pairs whose two images share one random
            contrast (same-modality pairs, as the T1 to T1 test); the rest are cross-contrast.
        label_maps: a folder of further anatomies as aseg label maps (e.g. SynthSeg's 15 training
            maps; each aligned onto the grid by its centroid, ``label_maps.py``); none: the donors only.
        val_maps: the maps of ``label_maps`` kept for validation (the rest train).
        tissue_contrast: share of renderings with a T1-, T2- or PD-like tissue table instead of
            random per-label intensities (training and validation).
        test_recipe: ``t1like``, or ``t2like`` for the contrast shift.
        seed: seeds the renderings and the training pairs' draw (with the epoch).
        batch_size: pairs per batch, per process under DDP.
        num_workers: data loader workers per process.
    """

    def __init__(
        self,
        root: str | Path = "brains",
        dims: int = 3,
        train_subjects: Sequence[str] = TRAIN_DONORS,
        val_subjects: Sequence[str] = VAL_DONORS,
        train_pairs: int = 512,
        val_pairs: int = 4,
        shapes: float = 0.1,
        warp_magnitude: float = 2.5,
        warp_smoothness: float = 12.0,
        rotation: float = 6.0,
        scaling: float = 0.06,
        shift: float = 3.0,
        blur: float = 1.0,
        noise: float = 0.05,
        bias: float = 0.2,
        crop: Sequence[int] | None = None,
        anisotropy: float = 0.0,
        same_contrast: float = 0.0,
        label_maps: str | Path | None = None,
        val_maps: Sequence[str] = ("training_seg_14", "training_seg_15"),
        tissue_contrast: float = 0.0,
        test_recipe: str = "t1like",
        seed: int = 0,
        batch_size: int = 1,
        num_workers: int = 0,
    ) -> None:
        super().__init__(batch_size, num_workers)
        if dims not in (2, 3):
            raise ValueError(f"dims must be 2 or 3, got {dims}")
        refuse_held_out(train_subjects, "train")
        refuse_held_out(val_subjects, "validation")
        if not train_subjects or not val_subjects:
            raise ValueError("train_subjects and val_subjects each need at least one donor")
        check_crop(crop, GRID_SHAPE[:dims])
        shares = (("shapes", shapes), ("anisotropy", anisotropy), ("same_contrast", same_contrast))
        for name, share in (*shares, ("tissue_contrast", tissue_contrast)):
            if not 0 <= share <= 1:
                raise ValueError(f"{name} is a share of the pairs, between 0 and 1; got {share}")
        self.save_hyperparameters()
        self.root = Path(root)
        self.maps: dict[str, torch.Tensor] = {}
        self.families: dict[str, str] = {}
        self.split_maps: dict[str, list[str]] = {"train": [], "val": []}

    def setup(self, stage: str | None = None) -> None:
        if not self.maps and stage in (None, "fit", "validate"):
            for subject in {*self.hparams.train_subjects, *self.hparams.val_subjects}:
                self.maps[subject] = torch.as_tensor(with_tissue(read_labels(self.root, subject)))[None, None]
                self.families[subject] = "dk"
            if self.hparams.label_maps is not None:
                self._read_label_maps(self.hparams.label_maps)

    def _read_label_maps(self, folder: str | Path) -> None:
        found = label_map_names(folder)
        missing = sorted(set(self.hparams.val_maps) - set(found))
        if missing:
            raise InputError(f"val_maps {', '.join(missing)} are not in {folder} (it holds {', '.join(found)})")
        clash = sorted(set(found) & set(self.maps))
        if clash:
            raise InputError(f"label maps {', '.join(clash)} in {folder} have the names of donors; rename them")
        for name, path in found.items():
            self.maps[name] = torch.as_tensor(with_tissue(read_label_map(path)))[None, None]
            self.families[name] = "aseg"
            self.split_maps["val" if name in self.hparams.val_maps else "train"].append(name)

    def _settings(self) -> SynthSettings:
        h = self.hparams  # the shape is unused: rendering and warps take the label map's own
        return SynthSettings(
            (8, 8),
            TISSUE,
            warp_magnitude=h.warp_magnitude,
            warp_smoothness=h.warp_smoothness,
            blur=h.blur,
            noise=h.noise,
            bias=h.bias,
        )

    def _pairs(self, split: str) -> BrainPairs:
        h = self.hparams
        subjects = [*(h.train_subjects if split == "train" else h.val_subjects), *self.split_maps[split]]
        count = h.train_pairs if split == "train" else h.val_pairs
        return BrainPairs(
            {s: self.maps[s] for s in subjects},
            h.dims,
            self._settings(),
            count,
            h.seed + OFFSETS[split],
            split,
            h.shapes if split == "train" else 0.0,
            h.rotation,
            h.scaling,
            h.shift,
            h.crop if split == "train" else None,
            h.anisotropy if split == "train" else 0.0,
            h.same_contrast,
            self.families,
            h.tissue_contrast,
        )

    def train_dataloader(self) -> DataLoader:
        pairs = self._pairs("train")
        return self.pair_loader(pairs, training_sampler(pairs, len(pairs), self.hparams.seed, self.trainer))

    def val_dataloader(self) -> DataLoader:
        pairs = self._pairs("val")
        return self.pair_loader(pairs, evaluation_sampler(pairs, self.trainer, "val"))

    def test_dataloader(self) -> DataLoader:
        pairs = HeldOutPairs(self.root, self.hparams.dims, self.hparams.test_recipe)
        return self.pair_loader(pairs, evaluation_sampler(pairs, self.trainer, "test"))
