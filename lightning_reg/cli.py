"""Command line: ``lightning-reg fit|validate|test|predict`` (LightningCLI, ``trainer_cli.py``),
``lightning-reg register`` (``register_cli.py``) and ``lightning-reg sweep`` (``sweep_cli.py``)."""
from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from typing import Sequence

from .errors import EXIT_BAD_INPUT, report
from .solver.checks import check_number


def finite_float(text: str) -> float:
    """argparse type: a finite number (``nan`` and ``inf`` are refused where they are parsed)."""
    try:
        return check_number("the value", text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _integer(text: str, minimum: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
    return value


def count(text: str) -> int:
    """argparse type: a whole number >= 0."""
    return _integer(text, 0)


def positive_int(text: str) -> int:
    """argparse type: a whole number >= 1."""
    return _integer(text, 1)


def device_option(text: str):
    """argparse type: a torch device this machine has (``cpu``, ``cuda``, ``cuda:N``, ``mps``)."""
    import torch

    try:
        parsed = torch.device(text)
    except (RuntimeError, ValueError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a device: use cpu, cuda or cuda:N") from None
    if parsed.type == "cuda":
        available = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if not available:
            raise argparse.ArgumentTypeError(f"{text} asked for, but torch sees no CUDA device; use --device cpu")
        if parsed.index is not None and parsed.index >= available:
            raise argparse.ArgumentTypeError(f"{text} asked for, but torch sees {available} CUDA device(s)")
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise argparse.ArgumentTypeError(f"{text} asked for, but torch sees no MPS device; use --device cpu")
    elif parsed.type not in ("cpu", "cuda", "mps"):
        raise argparse.ArgumentTypeError(f"{text!r}: lightning-reg runs on cpu, cuda or mps")
    return parsed


#: commands outside LightningCLI: each module has ``build_parser()`` and ``run(args) -> dict``
COMMANDS = {"register": "lightning_reg.register_cli", "sweep": "lightning_reg.sweep_cli"}
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lightning-reg`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LIGHTNING_COMMANDS:
        from lightning.pytorch.utilities import rank_zero_only

        from .trainer_cli import run_lightning  # noqa: I001 (Lightning loads slowly: only for these commands)
        try:
            run_lightning(argv)
        except Exception as error:  # the user's settings, data, files and machine; else a traceback
            # every DDP process finds the same error: say it once
            return report(error, f"lightning-reg {argv[0]}", show=rank_zero_only.rank == 0)
        return 0
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        known = ", ".join([*LIGHTNING_COMMANDS, *COMMANDS])
        if argv and argv[0] not in ("-h", "--help"):
            print(f"lightning-reg: error: unknown command {argv[0]!r}; commands: {known}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"usage: lightning-reg COMMAND [options]\ncommands: {known}\n"
              "  fit        train features through the solver (lightning-reg fit --help)\n"
              "  validate   evaluate a model on the validation pairs\n"
              "  test       evaluate on the test pairs; writes test_metrics.csv into the run folder\n"
              "  predict    register the prediction pairs with a model\n"
              "  register   register two NIfTI files, with or without a model (lightning-reg register --help)\n"
              "  sweep      run a W&B sweep file offline and summarize it (lightning-reg sweep --help)")
        return 0 if argv else EXIT_BAD_INPUT
    command = importlib.import_module(COMMANDS[argv[0]])
    args = command.build_parser().parse_args(argv[1:])
    try:
        result = command.run(args)
    except Exception as error:
        return report(error, f"lightning-reg {argv[0]}")
    print(json.dumps({k: v for k, v in result.items() if k != "dice_per_label"}))
    return 0


def _forget_working_folder() -> None:
    """``python -m`` puts the working folder first on ``sys.path``; the ``lightning-reg`` script does
    not. Drop it, so that a class path (say, one a checkpoint names) never imports a ``.py`` file
    lying in the working folder."""
    here = os.path.realpath(os.getcwd())
    sys.path[:] = [entry for entry in sys.path if entry and os.path.realpath(entry) != here]


if __name__ == "__main__":
    _forget_working_folder()
    sys.exit(main())
