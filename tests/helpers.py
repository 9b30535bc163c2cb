"""Helpers the tests import (conftest.py files are for fixtures only)."""

from __future__ import annotations

import contextlib
import io
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

#: options that make ``lightning-reg fit``/``test`` tiny: 2D 32x32, a few pairs, one epoch
TINY_2D = [
    "--data.shape",
    "[32,32]",
    "--data.train_pairs",
    "2",
    "--data.val_pairs",
    "1",
    "--data.test_pairs",
    "3",
    "--trainer.max_epochs",
    "1",
    "--trainer.enable_progress_bar",
    "false",
    "--model.train_solver.iterations",
    "[5,5,5]",
]


def mean_dice(fixed_seg: torch.Tensor, warped_seg: torch.Tensor) -> float:
    from lightning_reg.evaluation.metrics import dice_per_label

    scores = dice_per_label(fixed_seg, warped_seg)
    return sum(scores.values()) / len(scores)


def lightning_reg(arguments, folder: Path, **environment: str) -> subprocess.CompletedProcess:
    """``lightning-reg ARGUMENTS`` in ``folder`` as a user runs it (W&B offline unless ``environment``
    says otherwise), output captured."""
    environment = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", **environment}
    return subprocess.run(
        [sys.executable, "-m", "lightning_reg.cli", *map(str, arguments)],
        cwd=folder,
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def _as_from_a_terminal() -> None:
    """Ctrl-C's default disposition in the child: a pytest-xdist worker may ignore SIGINT, and an
    ignored signal stays ignored across exec (Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_lightning_reg(arguments, folder: Path) -> subprocess.Popen:
    """``lightning-reg ARGUMENTS`` started in ``folder`` as from a terminal (W&B offline), not waited
    for: for tests that signal or kill it."""
    environment = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true")
    return subprocess.Popen(
        [sys.executable, "-m", "lightning_reg.cli", *map(str, arguments)],
        cwd=folder,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_as_from_a_terminal,
    )


def written_folder(done: subprocess.CompletedProcess, folder: Path) -> Path:
    """The folder a command names on its last line (``lightning-reg <command>: wrote <folder>``),
    relative to the folder it ran in."""
    last = done.stderr.strip().splitlines()[-1]
    assert ": wrote " in last, done.stderr[-3000:]
    return folder / last.split(": wrote ", 1)[1]


def wandb_exit_code(offline_run: Path) -> int | None:
    """The exit code in the ``exit`` record of an offline W&B run (``None``: the run was never
    closed). The ``.wandb`` file is a LevelDB-style log of protobuf records (a 7-byte ``:W&B``
    header, then 32 KiB blocks of chunks, each ``<crc32, length, type>``); wandb 0.31 ships no
    reader for it in Python."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data = next(offline_run.glob("run-*.wandb")).read_bytes()
    block, position, pending, code = 32768, 7, b"", None
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a chunk header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        if kind == 0:
            break
        pending += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a whole record, or the last chunk of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            if record.WhichOneof("record_type") == "exit":
                code = record.exit.exit_code
    return code


#: a writer that stops in the middle of writing ``name`` (printing "ready") until it is killed
WRITER = """
import sys, time
from lightning_reg.files.output_folder import atomic_path
with atomic_path(sys.argv[1]) as temporary:
    temporary.write_bytes(b"half a file")
    print("ready", flush=True)
    time.sleep(600)
"""


def killed_writer_of(path) -> subprocess.Popen:
    """A writer of ``path`` stopped mid-write, then killed with SIGKILL (``kill -9``)."""
    process = stopped_writer_of(path)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    return process


def stopped_writer_of(path) -> subprocess.Popen:
    """A writer of ``path`` (``atomic_path``) stopped in the middle of writing it, alive."""
    process = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    return process


def in_process(arguments) -> SimpleNamespace:
    """``lightning-reg ARGUMENTS`` in this process (quicker than a new one for ``register`` and ``apply``,
    which do not start Lightning): ``returncode``, ``stdout`` and ``stderr``, as ``lightning_reg`` gives."""
    from lightning_reg.cli import main

    stdout, stderr = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main([str(item) for item in arguments])
        except SystemExit as stop:  # argparse refuses a value where it is parsed
            code = stop.code
    return SimpleNamespace(returncode=code, stdout=stdout.getvalue(), stderr=stderr.getvalue())
