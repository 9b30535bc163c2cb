"""Choose the gate of an ``AddedFeatures`` model (the learned channels' weight beside the image) on the
validation anatomies only (never the held-out subjects): mean Dice of the validation split's rendered
pairs (the training run's data settings, from the checkpoint) at each gate, with the model's evaluation
settings. ``--save`` writes the checkpoint with the best gate, for ``python -m lightning_reg.models.bundle``.

    python benchmarks/choose_gate.py --checkpoint runs/.../best.ckpt --brains brains \
        --label-maps ../shared/data/synthseg-label-maps --gates 0 4 8 16 32 --save chosen.ckpt
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from measure import machine

from lightning_reg.data.brains.datamodule import BrainDataModule
from lightning_reg.evaluation.rows import pair_rows
from lightning_reg.nn import AddedFeatures
from lightning_reg.training.module import RegistrationModule


def validation_dice(model: RegistrationModule, pairs) -> float:
    """Mean over the pairs of the mean Dice over each pair's labels, as ``lightning-reg validate``."""
    dice = []
    for index in range(len(pairs)):
        batch = {key: (value[None] if torch.is_tensor(value) else [value]) for key, value in pairs[index].items()}
        with torch.no_grad():
            dice.append(pair_rows(batch, model.register(batch)[-1], 0.0)[0]["dice"])
    return statistics.mean(dice)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, required=True)
    parser.add_argument("--brains", type=Path, required=True)
    parser.add_argument("--label-maps", type=Path, help="the folder of aseg maps (default: the training run's)")
    parser.add_argument("--gates", type=float, nargs="+", default=[0, 4, 8, 16, 32])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--save", type=Path, help="write the checkpoint with the best gate here")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = RegistrationModule.load_from_checkpoint(str(args.checkpoint), map_location="cpu").eval()
    if not isinstance(model.network, AddedFeatures):
        parser.error(f"{args.checkpoint} holds {type(model.network).__name__}, not AddedFeatures: it has no gate")
    # the validation split the model was trained with: its data module's settings, from the checkpoint
    settings = torch.load(args.checkpoint, map_location="cpu", weights_only=True).get("datamodule_hyper_parameters")
    if not settings:
        parser.error(f"{args.checkpoint} has no data module settings; it was not trained with BrainDataModule")
    settings = {key: value for key, value in settings.items() if not key.startswith("_")}  # LightningCLI's own keys
    settings |= {"root": args.brains, "label_maps": args.label_maps or settings.get("label_maps")}
    data = BrainDataModule(**settings)
    data.setup("validate")
    pairs = data.val_dataloader().dataset
    found = {}
    for gate in args.gates:
        with torch.no_grad():
            model.network.gate.fill_(gate)
        found[gate] = validation_dice(model, pairs)
        print(f"gate {gate:g}: validation Dice {found[gate]:.4f}", flush=True)
    best = max(found, key=found.get)
    print(json.dumps({"machine": machine("cpu"), "checkpoint": str(args.checkpoint), "dice": found, "best": best}))
    if args.save is not None:
        checkpoint = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
        checkpoint["state_dict"]["network.gate"] = torch.tensor(float(best))
        torch.save(checkpoint, args.save)
        print(f"wrote {args.save} with gate {best:g}")


if __name__ == "__main__":
    main()
