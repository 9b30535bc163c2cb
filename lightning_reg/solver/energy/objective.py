"""The energy the solver minimizes at one scale: similarity, explicit penalty and label prompts.

    E(theta) = sim(F_fixed, F_moving o phi; masks) + lambda R(phi)
               + sum_k mu_k |S_fixed,k - S_moving,k o phi|^2 / (2 |S_fixed,k|)

Every term is one value per pair, ``[B]``, so a batch's energy is their sum. For syn the fixed
side is deformed too (``F_fixed o psi_f``, its masks likewise): ``Transform.energy_grids``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import torch

from ..checks import check_number
from ..geometry.filters import antialiased_resize
from ..geometry.interpolation import SAMPLE_MODES
from ..geometry.spatial import sample
from ..geometry.transforms import Transform
from .similarity import Similarity


@dataclass
class Prompt:
    """A label-fidelity term: masks of the same structures in both images and a weight.

    ``fixed`` ``[B, K, *S_fixed]`` and ``moving`` ``[B, K, *S_moving]`` are float masks (one channel
    per structure, values in [0, 1]). Each structure's squared mismatch is divided by twice its
    fixed volume, so a structure contributes about ``1 - Dice`` whatever its size.
    """

    fixed: torch.Tensor
    moving: torch.Tensor
    weight: float = 1.0

    def __post_init__(self) -> None:
        if self.fixed.dim() != self.moving.dim() or self.fixed.shape[:2] != self.moving.shape[:2]:
            raise ValueError(
                f"prompt masks must be [B, K, *S] with the same B and K for fixed and moving, "
                f"got {tuple(self.fixed.shape)} and {tuple(self.moving.shape)}"
            )
        self.weight = check_number("prompt weight", self.weight, 0)

    def at_shapes(self, fixed_shape: Sequence[int], moving_shape: Sequence[int]) -> "Prompt":
        """The masks resampled (anti-aliased) to the spatial shapes of one scale."""
        return replace(
            self,
            fixed=antialiased_resize(self.fixed.float(), fixed_shape),
            moving=antialiased_resize(self.moving.float(), moving_shape),
        )

    def __call__(self, grid: torch.Tensor, fixed_grid: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted mismatch ``[B]`` of the moving masks sampled at ``grid`` with the fixed masks
        (sampled at ``fixed_grid``, where the transform deforms the fixed image too)."""
        warped = sample(self.moving, grid, padding_mode="zeros")
        fixed = self.fixed if fixed_grid is None else sample(self.fixed, fixed_grid, padding_mode="zeros")
        mismatch = (fixed - warped).pow(2).flatten(2).sum(2)
        volume = self.fixed.flatten(2).sum(2).clamp_min(1.0)
        return self.weight * (mismatch / (2.0 * volume)).sum(1)


def label_prompt(
    fixed_labels: torch.Tensor, moving_labels: torch.Tensor, labels: Sequence[int], weight: float = 1.0
) -> Prompt:
    """A :class:`Prompt` from integer label maps ``[B, 1, *S]`` and the label values to match."""
    if not labels:
        raise ValueError("give at least one label value to prompt with")
    masks = []
    for name, label_map in (("fixed", fixed_labels), ("moving", moving_labels)):
        present = set(torch.unique(label_map).tolist())
        missing = [label for label in labels if label not in present]
        if missing:
            raise ValueError(
                f"prompt label(s) {missing} do not occur in the {name} label map (its labels: {sorted(present)[:20]})"
            )
        masks.append(torch.cat([(label_map == label).float() for label in labels], dim=1))
    return Prompt(masks[0], masks[1], weight)


@dataclass
class Masks:
    """Cost-function masks (as ANTs' ``-x``): the similarity counts only fixed voxels inside
    ``fixed`` ``[B, 1, *S_fixed]`` whose mapped point lies inside ``moving`` ``[B, 1, *S_moving]``
    (values in [0, 1]; either may be ``None``). The moving mask enters as a weight only, without a
    gradient, so the solver cannot lower its energy by moving voxels out of the mask."""

    fixed: torch.Tensor | None = None
    moving: torch.Tensor | None = None

    def at_shapes(self, fixed_shape: Sequence[int], moving_shape: Sequence[int]) -> "Masks":
        """The masks resampled (anti-aliased) to the spatial shapes of one scale."""
        return Masks(
            None if self.fixed is None else antialiased_resize(self.fixed.float(), fixed_shape),
            None if self.moving is None else antialiased_resize(self.moving.float(), moving_shape),
        )

    def weights(self, grid: torch.Tensor, fixed_grid: torch.Tensor | None = None) -> torch.Tensor | None:
        """Per-voxel weights ``[B, 1, *S_fixed]`` of the similarity at the map ``grid`` (and, where
        the transform deforms the fixed image too, ``fixed_grid``; without a gradient, as ``moving``);
        ``None`` when neither mask is given."""
        weights = None if self.fixed is None else self.fixed.float()
        if weights is not None and fixed_grid is not None:
            weights = sample(weights, fixed_grid.detach(), padding_mode="zeros")
        if self.moving is not None:
            inside = sample(self.moving.float(), grid.detach(), padding_mode="zeros")
            weights = inside if weights is None else weights * inside
        return weights


@dataclass
class Objective:
    """Similarity, optional explicit regularizer with its weight, and prompts; ``interpolation`` of
    the moving features (``linear``, or ``cubic``: a twice differentiable energy, see
    ``interpolation.tap_sample``)."""

    similarity: Similarity
    regularizer: Callable[[torch.Tensor], torch.Tensor] | None = None
    regularizer_weight: float = 0.0
    prompts: Sequence[Prompt] = ()
    interpolation: str = "linear"
    masks: Masks | None = None

    def at_shapes(self, fixed_shape: Sequence[int], moving_shape: Sequence[int]) -> "Objective":
        """This objective with its prompts and masks resampled to one scale."""
        if not self.prompts and self.masks is None:
            return self
        return replace(
            self,
            prompts=[prompt.at_shapes(fixed_shape, moving_shape) for prompt in self.prompts],
            masks=None if self.masks is None else self.masks.at_shapes(fixed_shape, moving_shape),
        )

    def __call__(self, transform: Transform, fixed: torch.Tensor, moving: torch.Tensor) -> torch.Tensor:
        """Per-pair energy ``[B]`` of ``transform``'s current parameters."""
        fixed_grid, grid = transform.energy_grids()
        mode = SAMPLE_MODES[self.interpolation]
        warped = sample(moving, grid, mode=mode)
        if fixed_grid is not None:  # syn: both images deformed toward the midpoint
            fixed = sample(fixed, fixed_grid, mode=mode)
        if self.masks is None:
            value = self.similarity(fixed, warped)
        else:
            value = self.similarity(fixed, warped, self.masks.weights(grid, fixed_grid))
        if self.regularizer is not None and self.regularizer_weight > 0:
            field = transform.regularized_field()
            if field is not None:
                value = value + self.regularizer_weight * self.regularizer(field)
        for prompt in self.prompts:
            value = value + prompt(grid, fixed_grid)
        return value
