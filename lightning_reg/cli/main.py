"""``lightning-reg COMMAND``: ``fit | validate | test | predict`` (LightningCLI, ``lightning.py``),
``register`` (``register.py``), ``apply`` (``apply.py``) and ``sweep`` (``sweep.py``)."""

from __future__ import annotations

import os
import sys
from typing import Sequence

from ..errors import EXIT_BAD_INPUT, interrupted, one_line_warnings, report
from ..files import strict_json

LIGHTNING_COMMANDS = ("fit", "validate", "test", "predict")
OTHER_COMMANDS = ("register", "apply", "sweep")
USAGE = """usage: lightning-reg COMMAND [options]
commands: {known}
  fit        train features through the solver (lightning-reg fit --help)
  validate   evaluate a model on the validation pairs
  test       evaluate on the test pairs; writes test_metrics.csv into a new run folder (named on its last line)
  predict    register the prediction pairs with a model
  register   register two NIfTI files, with or without a model (lightning-reg register --help)
  apply      apply saved transforms (ours or ANTs') to an image or label map (lightning-reg apply --help)
  sweep      run a W&B sweep file offline and summarize it (lightning-reg sweep --help)"""


def share_cores() -> None:
    """Idle OpenMP threads sleep instead of spinning (unless the user set ``OMP_WAIT_POLICY``).

    torch's libgomp spins its threads between parallel regions; when another process shares the
    cores, the spinning threads take turns with the working ones and a training step ran 4x slower
    (benchmarks/README.md, "Cores shared"). Read when libgomp loads, so set before torch is imported.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``lightning-reg`` console script; returns the exit status (2: the user's
    input, 130: Ctrl-C, each with one line on stderr)."""
    share_cores()
    argv = list(sys.argv[1:] if argv is None else argv)
    program = f"lightning-reg {argv[0]}" if argv else "lightning-reg"
    one_line_warnings(program)
    try:
        if argv and argv[0] in LIGHTNING_COMMANDS:
            return _lightning(argv)
        return _other(argv)
    except KeyboardInterrupt as stop:  # a command that kept something says what in the interrupt's message
        return interrupted(program, str(stop) or "nothing half-written was left")


def _other(argv: list[str]) -> int:
    known = ", ".join([*LIGHTNING_COMMANDS, *OTHER_COMMANDS])
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE.format(known=known))
        return 0 if argv else EXIT_BAD_INPUT
    if argv[0] not in OTHER_COMMANDS:
        print(f"lightning-reg: error: unknown command {argv[0]!r}; commands: {known}", file=sys.stderr)
        return EXIT_BAD_INPUT
    # each command is imported only when run: Lightning alone takes seconds to import
    if argv[0] == "register":
        from .register import build_parser, run
    elif argv[0] == "apply":
        from .apply import build_parser, run
    else:
        from .sweep import build_parser, run
    args = build_parser().parse_args(argv[1:])
    args.command_line = ["lightning-reg", *argv]
    try:
        result = run(args)
    except Exception as error:  # the user's settings, data, files and machine; else a traceback
        return report(error, f"lightning-reg {argv[0]}")
    print(strict_json.dumps({k: v for k, v in result.items() if k != "dice_per_label"}), flush=True)
    print(f"lightning-reg {argv[0]}: wrote {result['out']}", file=sys.stderr)
    return 0


def _lightning(argv: list[str]) -> int:
    from lightning.pytorch.utilities.rank_zero import rank_zero_only

    from .lightning import run_lightning

    program = f"lightning-reg {argv[0]}"
    first = getattr(rank_zero_only, "rank", 0) == 0  # Lightning sets the process's rank on the function
    try:
        folder = run_lightning(argv)
    except SystemExit as stop:  # Lightning ends a run stopped by Ctrl-C with exit(1)
        from ..training.callbacks import InterruptCheckpoint

        if InterruptCheckpoint.interrupted is None:
            raise
        code = stop.code if isinstance(stop.code, int) else 1
        return interrupted(program, InterruptCheckpoint.interrupted) if first else code
    except Exception as error:  # the user's settings, data, files and machine; else a traceback
        # every DDP process finds the same error: say it once
        return report(error, program, show=first)
    if folder is not None and first:
        print(f"{program}: wrote {folder}", file=sys.stderr)
    return 0
