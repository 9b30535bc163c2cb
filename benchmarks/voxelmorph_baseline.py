"""VoxelMorph (pip ``voxelmorph``, its torch ``VxmPairwise`` model) as a LightningModule trained with
the same losses as ours: LNCC of the images + soft Dice of the labels, plus VoxelMorph's own
smoothness penalty on the velocity field. The direct-regression baseline of the benchmarks.

Run as a script it trains the baseline on the real-brain renderings, the same pairs and steps as a
bundled model (``configs/brain2d.yaml``: 4 epochs of 400 pairs), and keeps the epoch of best
validation Dice (donor 14380; the held-out subjects are never seen):

    python benchmarks/voxelmorph_baseline.py --brains brains --dims 2 --anisotropy 0.3 --out runs/vxm2d.ckpt
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import lightning as L
import neurite
import torch
import voxelmorph

from lightning_reg.evaluation.rows import pair_rows
from lightning_reg.solver import RegistrationResult
from lightning_reg.solver.resample import onto_fixed_grid, through_header
from lightning_reg.training.losses import ImageDissimilarity, one_hot_labels, soft_dice_loss


class VoxelMorphBaseline(L.LightningModule):
    """``VxmPairwise`` (UNet on the concatenated pair, 5 levels, scaling and squaring of a
    stationary velocity field in 5 steps): one forward pass per pair, no optimization."""

    def __init__(
        self,
        dims: int = 2,
        features: tuple[int, ...] = (16, 32, 32, 32, 32),
        image_weight: float = 1.0,
        dice_weight: float = 1.0,
        smooth_weight: float = 0.1,
        lr: float = 1e-3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.model = voxelmorph.nn.models.VxmPairwise(
            ndim=dims, source_channels=1, target_channels=1, nb_features=list(features), integration_steps=5
        )
        self.smoothness = neurite.nn.modules.SpatialGradient(penalty="l2")
        self.image_dissimilarity = ImageDissimilarity("lncc")

    def forward(self, batch: dict) -> RegistrationResult:
        """The warp of the pair; a moving image on a grid of its own (affines differ, e.g. thick
        slices) is first resampled onto the fixed grid, as VoxelMorph's users do (``solver.resample``)."""
        header, moving = onto_fixed_grid(
            batch["fixed"], batch["moving"], batch.get("fixed_affine"), batch.get("moving_affine")
        )
        displacement = self._padded_model(moving, batch["fixed"])  # voxels, array-order components
        return through_header(header, RegistrationResult.from_voxel_displacement(displacement))

    def _padded_model(self, moving: torch.Tensor, fixed: torch.Tensor) -> torch.Tensor:
        """The network on images zero-padded to a multiple of its downsampling (as its users pad
        to 160x192x224), the displacement cropped back."""
        multiple = 2 ** len(self.hparams.features)
        shape = fixed.shape[2:]
        pad = [(-n) % multiple for n in shape]
        if not any(pad):
            return self.model(moving, fixed)
        widths = [width for amount in reversed(pad) for width in (0, amount)]
        padded = self.model(*(torch.nn.functional.pad(image, widths) for image in (moving, fixed)))
        return padded[(..., *[slice(0, n) for n in shape])]

    def training_step(self, batch: dict, batch_index: int) -> torch.Tensor:
        result = self(batch)
        loss = self.hparams.image_weight * self.image_dissimilarity(batch["fixed"], result.warp(batch["moving"]))
        fixed_labels, moving_labels = one_hot_labels(batch["fixed_seg"], batch["moving_seg"])
        loss = loss + self.hparams.dice_weight * soft_dice_loss(fixed_labels, result.warp(moving_labels))
        loss = loss + self.hparams.smooth_weight * self.smoothness(self.model.velocity)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["fixed"]))
        return loss

    def validation_step(self, batch: dict, batch_index: int) -> None:
        rows = self.evaluate(batch)
        self.log("val/dice", sum(row["dice"] for row in rows) / len(rows), batch_size=len(rows))

    def evaluate(self, batch: dict) -> list[dict]:
        start = time.perf_counter()
        with torch.no_grad():
            result = self(batch)
        return pair_rows(batch, result, (time.perf_counter() - start) / len(batch["fixed"]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)


def train_on_brains() -> None:
    """Train on ``BrainDataModule`` renderings as a bundled model is trained; save the best epoch."""
    from lightning.pytorch.callbacks import ModelCheckpoint

    from lightning_reg.data.brains.datamodule import BrainDataModule

    parser = argparse.ArgumentParser(description=train_on_brains.__doc__)
    parser.add_argument("--brains", type=Path, required=True, help="the folder python -m lightning_reg.anatomy wrote")
    parser.add_argument("--dims", type=int, default=2, choices=(2, 3))
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--train-pairs", type=int, default=400)
    parser.add_argument("--val-pairs", type=int, default=8)
    parser.add_argument("--anisotropy", type=float, default=0.0, help="share of thick-slice moving images")
    parser.add_argument("--crop", type=int, nargs="+", help="training crop (3D), as configs/brain3d.yaml")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, required=True, help="the checkpoint to write")
    args = parser.parse_args()
    if args.out.exists():
        raise SystemExit(f"{args.out} exists; choose another --out")
    torch.set_num_threads(args.threads)
    L.seed_everything(0)
    data = BrainDataModule(
        str(args.brains),
        dims=args.dims,
        train_pairs=args.train_pairs,
        val_pairs=args.val_pairs,
        anisotropy=args.anisotropy,
        crop=args.crop,
    )
    best = ModelCheckpoint(dirpath=args.out.parent, filename=args.out.stem + "-{epoch}", monitor="val/dice", mode="max")
    trainer = L.Trainer(
        max_epochs=args.epochs,
        logger=False,
        callbacks=[best],
        gradient_clip_val=1.0,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    start = time.perf_counter()
    trainer.fit(VoxelMorphBaseline(dims=args.dims), data)
    Path(best.best_model_path).rename(args.out)
    print(
        f"trained in {time.perf_counter() - start:.0f} s; best validation Dice {float(best.best_model_score):.3f} "
        f"-> {args.out}"
    )


if __name__ == "__main__":
    train_on_brains()
