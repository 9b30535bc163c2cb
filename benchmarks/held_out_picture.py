"""The picture of one held-out pair (2D, central axial slice) registered by a bundled model: fixed,
moving, warped moving, the warped labels' outlines over the fixed image, and three feature channels
of each image at full resolution.

    python benchmarks/held_out_picture.py --brains brains [--checkpoint brain2d] [--pair 0] --out docs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import numpy as np
import torch

from lightning_reg.data.brains.datamodule import HeldOutPairs
from lightning_reg.evaluation.metrics import dice_per_label
from lightning_reg.models import resolve_checkpoint
from lightning_reg.training.module import RegistrationModule

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def outlines(labels: np.ndarray) -> np.ndarray:
    """Where a label map changes value between neighbours (a boolean map of its boundaries)."""
    edge = np.zeros(labels.shape, bool)
    edge[1:] |= labels[1:] != labels[:-1]
    edge[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    return edge


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brains", type=Path, required=True)
    parser.add_argument("--checkpoint", default="brain2d")
    parser.add_argument("--pair", type=int, default=0, help="which of the 6 held-out pairs")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    model = RegistrationModule.load_from_checkpoint(str(resolve_checkpoint(args.checkpoint)), map_location="cpu").eval()
    pair = HeldOutPairs(args.brains, 2)[args.pair]
    batch = {key: value[None] for key, value in pair.items() if torch.is_tensor(value)}
    with torch.no_grad():
        result = model.register(batch)[-1]
        warped = result.warp(batch["moving"])[0, 0]
        warped_seg = result.warp_labels(batch["moving_seg"])
        fixed_features, moving_features = model.features(batch["fixed"], batch["moving"])
    before = np.mean(list(dice_per_label(batch["fixed_seg"], batch["moving_seg"]).values()))
    after = np.mean(list(dice_per_label(batch["fixed_seg"], warped_seg).values()))
    figure, axes = plt.subplots(2, 4, figsize=(11, 6.4))
    fixed = pair["fixed"][0].numpy()
    panels = [
        (fixed, "fixed"),
        (pair["moving"][0].numpy(), f"moving (Dice {before:.3f})"),
        (warped.numpy(), f"warped (Dice {after:.3f})"),
        (fixed, "warped labels' outlines on fixed"),
    ]
    for axis, (image, title) in zip(axes[0], panels):
        axis.imshow(image.T, cmap="gray", origin="lower")
        axis.set_title(title, fontsize=9)
    overlay = np.ma.masked_where(~outlines(warped_seg[0, 0].numpy()), np.ones_like(fixed))
    axes[0, 3].imshow(overlay.T, cmap="autumn", origin="lower", alpha=0.9)
    for axis, (features, role) in zip(axes[1], [(fixed_features[-1], "fixed"), (moving_features[-1], "moving")]):
        rgb = features[0, :3].movedim(0, -1).numpy()
        rgb = (rgb - rgb.min((0, 1))) / np.maximum(np.ptp(rgb, (0, 1)), 1e-8)
        axis.imshow(rgb.transpose(1, 0, 2), origin="lower")
        axis.set_title(f"{role} features 1-3 (full resolution)", fontsize=9)
    axes[1, 2].imshow((warped_seg[0, 0].numpy() % 20).T, cmap="tab20", origin="lower", interpolation="nearest")
    axes[1, 2].set_title("warped labels", fontsize=9)
    axes[1, 3].imshow((pair["fixed_seg"][0].numpy() % 20).T, cmap="tab20", origin="lower", interpolation="nearest")
    axes[1, 3].set_title("fixed labels", fontsize=9)
    for axis in axes.flat:
        axis.axis("off")
    figure.suptitle(
        f"held-out pair {pair['id']}, {args.checkpoint}, {model.eval_solver.transform} at test time", fontsize=10
    )
    figure.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "held_out_pair.png"
    figure.savefig(path, dpi=100)
    print(f"Dice {before:.3f} -> {after:.3f}; wrote {path}")


if __name__ == "__main__":
    main()
