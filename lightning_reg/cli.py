"""Command line: ``lightning-reg fit|validate|test|predict`` (LightningCLI, ``trainer_cli.py``),
``lightning-reg register`` (``register_cli.py``) and ``lightning-reg sweep`` (``sweep_cli.py``)."""
from __future__ import annotations

import argparse
import importlib
import json
import sys
from typing import Sequence

from .io import InputError

EXIT_BAD_INPUT = 2


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (exit code 2)."""

    def error(self, message: str) -> None:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


#: commands outside LightningCLI: each module has ``build_parser()`` and ``run(args) -> dict``
COMMANDS = {"register": "lightning_reg.register_cli", "sweep": "lightning_reg.sweep_cli"}
LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")


def first_reason(message: str) -> str:
    """The reason in a jsonargparse union error ("Does not validate against any of the Union
    subtypes ... - <reason>"): the one that is not about ``None``; other messages unchanged."""
    if "Does not validate against any of the Union subtypes" not in message:
        return message
    reasons = [line.strip()[2:] for line in message.splitlines() if line.strip().startswith("- ")]
    reasons = [reason for reason in reasons if "NoneType" not in reason]
    return reasons[0] if reasons else message


def _hint(message: str) -> str:
    """How to fix a trainer error whose message does not say it."""
    if "gpu backend" in message.lower() or "gpuaccelerator can not run" in message.lower():
        return (" torch sees no GPU on this machine: train on the CPU (--trainer.accelerator cpu; several CPU "
                "processes with --trainer.devices 2 --trainer.strategy ddp), or install a CUDA build of torch")
    return ""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lightning-reg`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in LIGHTNING_COMMANDS:
        from lightning.fabric.utilities.exceptions import MisconfigurationException
        from lightning.pytorch.utilities import rank_zero_only

        from .trainer_cli import run_lightning  # noqa: I001 (Lightning loads slowly: only for these commands)
        try:
            run_lightning(argv)
        except (InputError, ValueError, MisconfigurationException) as error:  # the user's settings and data
            if rank_zero_only.rank == 0:  # every DDP process finds the same error: say it once
                print(f"lightning-reg {argv[0]}: error: {first_reason(str(error))}{_hint(str(error))}",
                      file=sys.stderr)
            return EXIT_BAD_INPUT
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
        report = command.run(args)
    except (InputError, ValueError) as error:
        print(f"lightning-reg {argv[0]}: error: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps({k: v for k, v in report.items() if k != "dice_per_label"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
