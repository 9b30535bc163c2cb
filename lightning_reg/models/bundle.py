"""``python -m lightning_reg.models.bundle RUN_CHECKPOINT NAME``: the weights and hyperparameters of
a ``lightning-reg fit`` checkpoint, without its optimizer state and callbacks, as the bundled model
``NAME`` (for maintainers; the card ``NAME.md`` is written by hand)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from ..files.output_folder import atomic_path
from ..training.checkpoints import read_checkpoint

#: what loading a module needs from a Lightning checkpoint
KEPT = ("state_dict", "hyper_parameters", "pytorch-lightning_version", "epoch", "global_step")


def slim(source: str | Path, target: str | Path, eval_solver: dict | None = None) -> Path:
    """Write ``target``: ``source`` with only :data:`KEPT` (weights as float32); ``eval_solver``: the
    test-time settings the model uses by default (fields of ``SolverSettings``; the rest as trained),
    chosen on validation data."""
    checkpoint = read_checkpoint(source)
    kept = {key: checkpoint[key] for key in KEPT if key in checkpoint}
    if eval_solver:
        kept["hyper_parameters"] = {**kept["hyper_parameters"], "eval_solver": dict(eval_solver)}
    kept["state_dict"] = {
        key: value.float() if value.is_floating_point() else value for key, value in kept["state_dict"].items()
    }
    target = Path(target)
    with atomic_path(target) as temporary:
        torch.save(kept, temporary)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lightning_reg.models.bundle", description=__doc__)
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("name")
    parser.add_argument("--eval-transform", help="default test-time transform (e.g. greedy)")
    parser.add_argument("--eval-iterations", type=int, nargs="+", help="default test-time iterations per level")
    parser.add_argument("--eval-tolerance", type=float, help="default test-time early-stopping tolerance")
    parser.add_argument(
        "--eval-feature-channels",
        type=int,
        help="default test-time principal components of the features the solver uses",
    )
    args = parser.parse_args(argv)
    overrides = {
        "transform": args.eval_transform,
        "iterations": args.eval_iterations,
        "tolerance": args.eval_tolerance,
        "feature_channels": args.eval_feature_channels,
    }
    path = slim(
        args.checkpoint,
        Path(__file__).parent / f"{args.name}.ckpt",
        {key: value for key, value in overrides.items() if value is not None},
    )
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
