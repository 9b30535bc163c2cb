"""argparse types shared by the commands: finite numbers, counts, devices; each refuses a bad value
where it is parsed, with one line that says why."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Callable

from ..solver.checks import check_number


def finite_float(text: str) -> float:
    """argparse type: a finite number (``nan`` and ``inf`` are refused where they are parsed)."""
    try:
        return check_number("the value", float(text))
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


def user_path(text: str) -> Path:
    """argparse type: a file or folder path, resolved once where it is parsed and used as such by every
    check, read, hash and report: ``~`` is the home folder (as a shell and nibabel read it, also when
    the shell did not expand it: quoted, or from a subprocess list), relative to the working folder,
    symbolic links kept (``--out`` refuses them by name)."""
    if not text or "\x00" in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not a path")
    return Path(os.path.abspath(os.path.expanduser(text)))


def checkpoint_option(text: str) -> Path:
    """argparse type: a checkpoint file (:func:`user_path`), or a bundled model's name as given (a bare
    word that names no file: ``brain3d``; ``resolve_checkpoint`` says when it names no model either)."""
    bare = Path(text).name == text and not Path(text).suffix
    return Path(text) if bare and not Path(text).exists() else user_path(text)


def thread_count(text: str) -> int:
    """argparse type: CPU threads for torch, 1 to this machine's cores (torch crashes on absurd counts)."""
    value = _integer(text, 1)
    cores = os.cpu_count() or 1
    if value > cores:
        raise argparse.ArgumentTypeError(f"this machine has {cores} CPU cores; give at most {cores}, got {value}")
    return value


#: the command-line word for "no such stage or term" (``--init none``, ``--regularizer none``)
NONE_WORD = "none"


def optional_choice(names: tuple[str, ...]) -> Callable[[str], str | None]:
    """argparse type: one of ``names``, or ``none`` read as ``None`` (no such stage or term)."""

    def parse(text: str) -> str | None:
        if text == NONE_WORD:
            return None
        if text not in names:
            raise argparse.ArgumentTypeError(f"invalid choice {text!r} (choose from {NONE_WORD}, {', '.join(names)})")
        return text

    return parse
