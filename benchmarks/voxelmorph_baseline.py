"""VoxelMorph (pip ``voxelmorph``, its torch ``VxmPairwise`` model) as a LightningModule trained with
the same losses as ours: LNCC of the images + soft Dice of the labels, plus VoxelMorph's own
smoothness penalty on the velocity field. The direct-regression baseline of the benchmarks."""
from __future__ import annotations

import time

import lightning as L
import neurite
import torch
import voxelmorph

from lightning_reg.evaluation import pair_rows
from lightning_reg.solver import RegistrationResult
from lightning_reg.training.losses import ImageDissimilarity, one_hot_labels, soft_dice_loss


class VoxelMorphBaseline(L.LightningModule):
    """``VxmPairwise`` (UNet on the concatenated pair, 5 levels, scaling and squaring of a
    stationary velocity field in 5 steps): one forward pass per pair, no optimization."""

    def __init__(self, dims: int = 2, features: tuple[int, ...] = (16, 32, 32, 32, 32), image_weight: float = 1.0,
                 dice_weight: float = 1.0, smooth_weight: float = 0.1, lr: float = 1e-3) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = voxelmorph.nn.models.VxmPairwise(ndim=dims, source_channels=1, target_channels=1,
                                                      nb_features=list(features), integration_steps=5)
        self.smoothness = neurite.nn.modules.SpatialGradient(penalty="l2")
        self.image_dissimilarity = ImageDissimilarity("lncc")

    def forward(self, batch: dict) -> RegistrationResult:
        displacement = self.model(batch["moving"], batch["fixed"])  # voxels, array-order components
        return RegistrationResult.from_voxel_displacement(displacement)

    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        result = self(batch)
        loss = self.hparams.image_weight * self.image_dissimilarity(batch["fixed"], result.warp(batch["moving"]))
        fixed_labels, moving_labels = one_hot_labels(batch["fixed_seg"], batch["moving_seg"])
        loss = loss + self.hparams.dice_weight * soft_dice_loss(fixed_labels, result.warp(moving_labels))
        loss = loss + self.hparams.smooth_weight * self.smoothness(self.model.velocity)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["fixed"]))
        return loss

    def evaluate(self, batch: dict) -> list[dict]:
        start = time.perf_counter()
        with torch.no_grad():
            result = self(batch)
        return pair_rows(batch, result, (time.perf_counter() - start) / len(batch["fixed"]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)
