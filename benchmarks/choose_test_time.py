"""Choose a trained model's default test-time representation on the validation donor only (never on
the held-out subjects): Dice and folding of the model as trained, greedy and svf on rendered pairs of
the validation split. Prints one line per choice; the best goes into the bundled checkpoint
(``python -m lightning_reg.models.bundle CKPT NAME --eval-transform T --eval-iterations ...``).

    python benchmarks/choose_test_time.py --checkpoint runs/.../best.ckpt --brains brains --dims 2 --pairs 8
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from lightning_reg.data.brains.datamodule import BrainDataModule
from lightning_reg.evaluation.rows import mean_rows, pair_rows
from lightning_reg.training.module import RegistrationModule


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--brains", required=True)
    parser.add_argument("--dims", type=int, default=3, choices=(2, 3))
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument("--iterations", type=int, nargs="+", default=[200, 100, 50])
    parser.add_argument("--transforms", nargs="+", default=["greedy", "svf"], help="test-time transforms to try")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = RegistrationModule.load_from_checkpoint(args.checkpoint, map_location="cpu").eval()
    data = BrainDataModule(args.brains, dims=args.dims, val_pairs=args.pairs)
    data.setup("fit")
    pairs = data.val_dataloader().dataset
    choices = {
        "as trained": model.eval_solver,
        **{name: replace(model.eval_solver, transform=name, iterations=args.iterations) for name in args.transforms},
    }
    for name, settings in choices.items():
        rows = []
        for index in range(len(pairs)):
            batch = {key: (value[None] if torch.is_tensor(value) else [value]) for key, value in pairs[index].items()}
            start = time.perf_counter()
            with torch.no_grad():
                result = model.register(batch, settings)[-1]
            rows += pair_rows(batch, result, time.perf_counter() - start)
        summary = mean_rows(rows)
        print(
            f"{name:>10}: validation Dice {summary['dice']:.3f}, folding {summary['folding_percent']:.3f} %, "
            f"{summary['seconds']:.1f} s/pair",
            flush=True,
        )


if __name__ == "__main__":
    main()
