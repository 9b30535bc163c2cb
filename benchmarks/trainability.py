"""Which learning signal trains features through the solver? For each gradient estimator, train an
untrained ``AddedFeatures`` model (it registers as the classical solver) on the same few rendered
training pairs for the same wall time, then report the mean final-level soft-Dice loss with the
training solver and the mean hard Dice at test-time settings (greedy, 200/100/50, tolerance 1e-6),
before and after; and, on a few pairs, each estimator's cosine with the fully unrolled gradient of
the network's weights (at one common, partly trained state: the gate at 1).

Estimators (training solve: greedy, Adam, 20/10/5 iterations, ``added`` similarity: mutual information on
the image, its default, and MSE on the learned channels):
one-step ``jfb``; 5 phantom steps with Adam's state frozen; 5 damped phantom steps (Geng et al. 2021,
damping 0.5); truncated back-propagation through each level's last 5 real steps; full unrolling.

Training donors only (the validation and held-out subjects are never read). Writes JSON and a markdown
table into --out.

    python benchmarks/trainability.py --brains brains --dims 2 --pairs 8 --seconds 120 --out benchmarks/results
    python benchmarks/trainability.py --brains brains --dims 3 --pairs 3 --seconds 240 --crop 64 \
        --out benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from measure import markdown_table, provenance

from lightning_reg.data.brains.datamodule import BrainDataModule
from lightning_reg.evaluation.metrics import dice_per_label
from lightning_reg.nn import AddedFeatures
from lightning_reg.solver import SolverOptions
from lightning_reg.training.losses import one_hot_labels, soft_dice_loss
from lightning_reg.training.module import RegistrationModule

#: (name, backward, backward options) of the estimators compared
ESTIMATORS = [
    ("jfb, 1 step", "jfb", {}),
    ("phantom, 5 steps", "jfb", {"jfb_steps": 5}),
    ("phantom, 5 damped steps", "jfb", {"jfb_steps": 5, "phantom_damping": 0.5}),
    ("truncated, last 5 steps", "truncated", {"truncated_steps": 5}),
    ("unroll", "unroll", {}),
]
TRAIN_ITERATIONS = [20, 10, 5]
TEST_TIME = dict(iterations=[200, 100, 50], tolerance=1e-6)


def model_for(backward: str, options: dict, dims: int, seed: int = 0) -> RegistrationModule:
    torch.manual_seed(seed)
    settings = SolverOptions(
        transform="greedy",
        similarity="added",
        iterations=TRAIN_ITERATIONS,
        scales=[4, 2, 1],
        backward={"mode": backward, **options},
    )
    return RegistrationModule(network=AddedFeatures(dims=dims), train_solver=settings, eval_solver=TEST_TIME)


def level_losses(model: RegistrationModule, batch: dict) -> list[torch.Tensor]:
    """Soft-Dice loss of every level with the training solver (what ``fit`` averages)."""
    labels = one_hot_labels(batch["fixed_seg"], batch["moving_seg"])
    results = model.solve(batch, model.features(batch["fixed"], batch["moving"]), model.train_solver)
    return [soft_dice_loss(labels[0], result.warp(labels[1])) for result in results]


def scores(model: RegistrationModule, batches: list[dict]) -> tuple[float, float]:
    """Mean final-level training loss and mean hard Dice at test-time settings over ``batches``."""
    losses, dice = [], []
    for batch in batches:
        with torch.no_grad():
            losses.append(float(level_losses(model, batch)[-1]))
            result = model.register(batch)[-1]
        found = dice_per_label(batch["fixed_seg"], result.warp_labels(batch["moving_seg"]))
        dice.append(sum(found.values()) / len(found))
    return sum(losses) / len(losses), sum(dice) / len(dice)


def train(estimator: tuple, batches: list[dict], dims: int, seconds: float, lr: float) -> dict:
    name, backward, options = estimator
    model = model_for(backward, options, dims)
    loss_before, dice_before = scores(model, batches)
    weights = torch.optim.Adam(model.network.parameters(), lr=lr)
    steps, start, curve = 0, time.perf_counter(), []
    while time.perf_counter() - start < seconds:
        batch = batches[steps % len(batches)]
        weights.zero_grad()
        loss = torch.stack(level_losses(model, batch)).mean()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.network.parameters(), 1.0)
        weights.step()
        curve.append(float(loss.detach()))
        steps += 1
    loss_after, dice_after = scores(model, batches)
    return {
        "estimator": name,
        "steps": steps,
        "seconds": time.perf_counter() - start,
        "loss_before": loss_before,
        "loss_after": loss_after,
        "dice_before": dice_before,
        "dice_after": dice_after,
        "gate": float(model.network.gate),
        "curve": curve,
    }


def weight_gradient(model: RegistrationModule, batch: dict) -> torch.Tensor:
    model.network.zero_grad()
    level_losses(model, batch)[-1].backward()
    return torch.cat([p.grad.flatten() for p in model.network.parameters() if p.grad is not None])


def cosines(batches: list[dict], dims: int) -> dict[str, list[float]]:
    """Per estimator, its weight gradient's cosine with the unrolled one on each of ``batches``, at the
    untrained weights with the gate at 1 (so the learned channels take part in the solve)."""
    found: dict[str, list[float]] = {}
    for batch in batches:
        reference = None
        for name, backward, options in [ESTIMATORS[-1], *ESTIMATORS[:-1]]:
            model = model_for(backward, options, dims)
            with torch.no_grad():
                model.network.gate.fill_(1.0)
            gradient = weight_gradient(model, batch)
            reference = gradient if reference is None else reference
            found.setdefault(name, []).append(float(F.cosine_similarity(gradient, reference, dim=0)))
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--brains", type=Path, required=True)
    parser.add_argument("--dims", type=int, default=2, choices=(2, 3))
    parser.add_argument("--pairs", type=int, default=8, help="training pairs, cycled")
    parser.add_argument("--cosine-pairs", type=int, default=3)
    parser.add_argument(
        "--seconds", type=float, default=120.0, help="training wall time of each estimator; 0: the cosines alone"
    )
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--crop", type=int, help="train and score on one random window of this side per pair")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    crop = [args.crop] * args.dims if args.crop else None
    data = BrainDataModule(
        args.brains, dims=args.dims, train_pairs=args.pairs, same_contrast=0.5, shapes=0.0, crop=crop
    )
    data.setup("fit")
    dataset = data.train_dataloader().dataset
    batches = [
        {key: value[None] for key, value in dataset[index].items() if torch.is_tensor(value)}
        for index in range(args.pairs)
    ]
    rows = []
    for estimator in ESTIMATORS if args.seconds > 0 else ():
        row = train(estimator, batches, args.dims, args.seconds, args.lr)
        rows.append(row)
        print(
            f"{row['estimator']:>24}: {row['steps']} steps in {row['seconds']:.0f} s; final-level loss "
            f"{row['loss_before']:.4f} -> {row['loss_after']:.4f}; hard Dice {row['dice_before']:.4f} -> "
            f"{row['dice_after']:.4f}; gate {row['gate']:.3f}",
            flush=True,
        )
    found = cosines(batches[: args.cosine_pairs], args.dims)
    rows = rows or [{"estimator": name} for name, _, _ in ESTIMATORS]
    for row in rows:
        row["cosines"] = found[row["estimator"]]
    record = {
        **provenance(args.threads),
        "dims": args.dims,
        "pairs": [dataset[index]["id"] for index in range(args.pairs)],
        "seconds": args.seconds,
        "lr": args.lr,
        "crop": args.crop,
        "rows": rows,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"trainability_{args.dims}d"
    (args.out / f"{stem}.json").write_text(json.dumps(record, indent=2))
    columns = [
        ("estimator", lambda r: r["estimator"]),
        ("weight steps", lambda r: str(r["steps"])),
        ("final-level loss before", lambda r: f"{r['loss_before']:.4f}"),
        ("after", lambda r: f"{r['loss_after']:.4f}"),
        ("hard Dice before", lambda r: f"{r['dice_before']:.4f}"),
        ("after", lambda r: f"{r['dice_after']:.4f}"),
        ("cosine with unroll", lambda r: " ".join(f"{c:.2f}" for c in r["cosines"])),
    ]
    if args.seconds <= 0:  # the cosines alone
        columns = [columns[0], columns[-1]]
    table = markdown_table(rows, columns, [])
    (args.out / f"{stem}.md").write_text(
        f"{record['machine']}; {args.dims}D, {args.pairs} training pairs"
        f"{f' ({args.crop}-voxel windows)' if args.crop else ''}, {args.seconds:g} s of weight steps "
        f"(Adam, lr {args.lr:g}) per estimator\n\n{table}"
    )


if __name__ == "__main__":
    main()
