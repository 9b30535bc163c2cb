"""argparse types shared by the commands: finite numbers, counts, devices; each refuses a bad value
where it is parsed, with one line that says why."""

from __future__ import annotations

import argparse

from ..solver.checks import check_number


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
