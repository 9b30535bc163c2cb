"""Can features be trained through the test-time solver? Overfit the correction of
``ResidualFeatures`` (image base; untrained, it registers as the classical solver) on one rendered
2D pair of the training donors (same contrast) with Adam on the weights, and compare the soft-Dice
loss of the final level and the hard Dice at test-time settings before and after, for each backward
mode, and with the loss on the final level only or averaged over the levels (as ``fit`` does).

A trainable solver lowers the final level's loss and raises the hard Dice on the pair it is fitted
to. Held-out subjects are never read. Writes JSON and a markdown table into --out.

    python benchmarks/trainability.py --brains brains --threads 2 --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from measure import machine, markdown_table

from lightning_reg.data.brains.datamodule import BrainDataModule
from lightning_reg.evaluation.metrics import dice_per_label
from lightning_reg.nn import ResidualFeatures
from lightning_reg.training.losses import one_hot_labels, soft_dice_loss
from lightning_reg.training.module import RegistrationModule
from lightning_reg.training.solver_settings import EvalSolverSettings, SolverSettings

#: (name, transform, optimizer, iterations, backward) of the training solvers compared; test time is
#: always the classical default (greedy, adam, 200/100/50, LNCC, tolerance 1e-6)
SOLVERS = [
    ("greedy-adam jfb", "greedy", "adam", [200, 100, 50], "jfb"),
    ("greedy-adam unroll", "greedy", "adam", [200, 100, 50], "unroll"),
    ("greedy-adam jfb, short", "greedy", "adam", [20, 10, 5], "jfb"),
    ("greedy-adam unroll, short", "greedy", "adam", [20, 10, 5], "unroll"),
]


def hard_dice(model: RegistrationModule, batch: dict) -> float:
    with torch.no_grad():
        result = model.register(batch)[-1]
    scores = dice_per_label(batch["fixed_seg"], result.warp_labels(batch["moving_seg"]))
    return sum(scores.values()) / len(scores)


def loss_of(model: RegistrationModule, batch: dict, labels: tuple, levels: str) -> torch.Tensor:
    results = model.solve(batch, model.features(batch["fixed"], batch["moving"]), model.train_solver)
    used = results if levels == "mean" else results[-1:]
    return torch.stack([soft_dice_loss(labels[0], result.warp(labels[1])) for result in used]).mean()


def overfit(batch: dict, solver: tuple, levels: str, steps: int, lr: float) -> dict:
    name, transform, optimizer, iterations, backward = solver
    torch.manual_seed(0)
    settings = SolverSettings(
        transform=transform,
        similarity="lncc",
        iterations=iterations,
        scales=[4, 2, 1],
        optimizer=optimizer,
        backward=backward,
    )
    model = RegistrationModule(
        network=ResidualFeatures(dims=2),
        train_solver=settings,
        eval_solver=EvalSolverSettings(iterations=[200, 100, 50], tolerance=1e-6),
    )
    labels = one_hot_labels(batch["fixed_seg"], batch["moving_seg"])
    before = hard_dice(model, batch)
    with torch.no_grad():
        loss_before = float(loss_of(model, batch, labels, "last"))
    weights = torch.optim.Adam(model.network.parameters(), lr=lr)
    losses, start = [], time.perf_counter()
    for _ in range(steps):
        weights.zero_grad()
        loss = loss_of(model, batch, labels, levels)
        loss.backward()
        weights.step()
        losses.append(float(loss.detach()))
    with torch.no_grad():
        final = float(loss_of(model, batch, labels, "last"))
    return {
        "solver": name,
        "levels": levels,
        "loss_before": loss_before,
        "loss_after": final,
        "dice_before": before,
        "dice_after": hard_dice(model, batch),
        "losses": losses,
        "seconds": time.perf_counter() - start,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brains", type=Path, required=True)
    parser.add_argument("--pair", type=int, default=0, help="which rendered training pair")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = BrainDataModule(args.brains, dims=2, train_pairs=args.pair + 1, same_contrast=1.0, shapes=0.0)
    data.setup("fit")
    item = data.train_dataloader().dataset[args.pair]
    batch = {key: value[None] for key, value in item.items() if torch.is_tensor(value)}
    rows = []
    for solver in SOLVERS:
        for levels in ("last", "mean"):
            row = overfit(batch, solver, levels, args.steps, args.lr)
            rows.append(row)
            print(
                f"{row['solver']:>26} loss on {levels:>4}: final-level loss {row['loss_before']:.4f} -> "
                f"{row['loss_after']:.4f}; hard Dice {row['dice_before']:.4f} -> {row['dice_after']:.4f}"
                f" ({row['seconds']:.0f} s)",
                flush=True,
            )
    record = {
        "machine": f"{machine('cpu')}, {args.threads} threads, torch {torch.__version__}",
        "pair": item["id"],
        "steps": args.steps,
        "lr": args.lr,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "trainability.json").write_text(json.dumps(record, indent=2))
    table = markdown_table(
        rows,
        [
            ("training solver", lambda r: r["solver"]),
            ("loss on", lambda r: r["levels"]),
            ("final-level loss before", lambda r: f"{r['loss_before']:.4f}"),
            ("after", lambda r: f"{r['loss_after']:.4f}"),
            ("hard Dice before", lambda r: f"{r['dice_before']:.4f}"),
            ("after", lambda r: f"{r['dice_after']:.4f}"),
        ],
        [],
    )
    (args.out / "trainability.md").write_text(
        f"{record['machine']}; pair {item['id']}, {args.steps} Adam steps of lr {args.lr}\n\n{table}"
    )


if __name__ == "__main__":
    main()
