"""Which solver inside training? The synthetic default (2D 64², `lightning-reg fit` with no arguments:
`AddedFeatures`, its `added` training solver, image and Dice losses) trained with each training
solver for the same epochs, one after the other in one process, then tested on the 16 fixed test pairs with the
solver it was trained with. Reports test Dice, folding, training seconds per pair and test seconds
per pair; writes JSON and a markdown table into --out.

    python benchmarks/training_solvers.py --threads 2 [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import lightning as L
import torch
from measure import machine, markdown_table, provenance

from lightning_reg.data import SyntheticDataModule
from lightning_reg.solver import SolverOptions
from lightning_reg.training.module import RegistrationModule
from lightning_reg.training.network_solver import ADDED_SOLVER

#: name -> training solver settings, changes of the module's default (the evaluation solver is the same)
SOLVERS = {
    "adam, jfb (default)": ADDED_SOLVER,
    "lbfgs, jfb": ADDED_SOLVER.changed(optimizer="lbfgs"),
    "lbfgs, ift": ADDED_SOLVER.changed(optimizer="lbfgs", backward="ift"),
}


def run(name: str, settings: SolverOptions, epochs: int) -> dict:
    L.seed_everything(0)
    model = RegistrationModule(train_solver=settings)
    data = SyntheticDataModule()
    trainer = L.Trainer(
        max_epochs=epochs,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        accelerator="cpu",
        devices=1,
    )
    start = time.perf_counter()
    trainer.fit(model, datamodule=data)
    train_seconds = time.perf_counter() - start
    pairs = epochs * len(data.train_dataloader().dataset)
    (metrics,) = trainer.test(model, datamodule=data, verbose=False)
    row = {
        "solver": name,
        "dice": metrics["test/dice"],
        "folding_percent": metrics["test/folding_percent"],
        "train_seconds_per_pair": train_seconds / pairs,
        "test_seconds_per_pair": metrics["test/seconds"],
        "train_seconds": train_seconds,
    }
    print(json.dumps(row))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--solvers", nargs="+", default=list(SOLVERS), choices=list(SOLVERS))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = [run(name, SOLVERS[name], args.epochs) for name in args.solvers]
    header = f"{machine('cpu')}, {args.threads} threads, torch {torch.__version__}, {args.epochs} epochs"
    table = markdown_table(
        rows,
        [
            ("training solver", lambda r: r["solver"]),
            ("test Dice", lambda r: f"{r['dice']:.3f}"),
            ("folding %", lambda r: f"{r['folding_percent']:.2f}"),
            ("train s / pair", lambda r: f"{r['train_seconds_per_pair']:.3f}"),
            ("test s / pair", lambda r: f"{r['test_seconds_per_pair']:.3f}"),
        ],
        ["solver"],
    )
    args.out.mkdir(parents=True, exist_ok=True)
    record = {**provenance(args.threads), "epochs": args.epochs, "rows": rows}
    (args.out / "training_solvers.json").write_text(json.dumps(record, indent=2))
    (args.out / "training_solvers.md").write_text(f"{header}\n\n{table}\n")
    print(header)
    print(table)


if __name__ == "__main__":
    main()
