"""Training losses: image dissimilarity after warping and soft Dice of linearly warped labels."""

from __future__ import annotations

from typing import Literal, get_args

import torch

from ..solver.energy.similarity import make_similarity
from ..solver.geometry.labels import label_values, one_hot


def one_hot_labels(fixed_seg: torch.Tensor, moving_seg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """One-hot ``[B, K, *S]`` float encodings of two integer label maps ``[B, 1, *S]`` over the
    union of their labels (background included as channel 0 when present)."""
    values = label_values(fixed_seg, moving_seg, background=False)
    return one_hot(fixed_seg, values), one_hot(moving_seg, values)


def soft_dice_loss(fixed_one_hot: torch.Tensor, warped_one_hot: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``1 - mean soft Dice`` over foreground channels (channel 0 is background), ``[B, K, *S]`` in."""
    overlap = (fixed_one_hot * warped_one_hot).flatten(2).sum(2)
    total = (fixed_one_hot + warped_one_hot).flatten(2).sum(2)
    dice = (2 * overlap + eps) / (total + eps)
    foreground = dice[:, 1:] if dice.shape[1] > 1 else dice
    return 1 - foreground.mean()


#: the training's image terms
ImageLossName = Literal["lncc", "mse"]


class ImageDissimilarity:
    """Dissimilarity of the fixed image and the warped moving image (``lncc`` or ``mse``), a scalar."""

    def __init__(self, name: ImageLossName = "lncc", window: int = 7) -> None:
        if name not in get_args(ImageLossName):
            raise ValueError(f"image loss must be 'lncc' or 'mse', got {name!r}")
        self.similarity = make_similarity(name, **({"window": window} if name == "lncc" else {}))

    def __call__(self, fixed: torch.Tensor, warped: torch.Tensor) -> torch.Tensor:
        return self.similarity(fixed, warped).mean()


def warp_losses(
    batch: dict, results: list, image_dissimilarity: ImageDissimilarity, with_dice: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The training terms of ``results`` (one ``RegistrationResult`` per level) on ``batch``, averaged
    over the levels: the image dissimilarity of the fixed and the warped moving image, and (with
    ``with_dice``) ``1 - soft Dice`` of the one-hot labels warped linearly."""
    labels = one_hot_labels(batch["fixed_seg"], batch["moving_seg"]) if with_dice else None
    image_terms, dice_terms = [], []
    for result in results:
        image_terms.append(image_dissimilarity(batch["fixed"], result.warp(batch["moving"])))
        if labels is not None:
            dice_terms.append(soft_dice_loss(labels[0], result.warp(labels[1])))
    return torch.stack(image_terms).mean(), torch.stack(dice_terms).mean() if dice_terms else None
