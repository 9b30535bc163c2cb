"""User-side failures: what they are, and the one line each command prints for them (exit code 2).

A failure is the user's side when the input, the options, the files or the machine's resources are
at fault (a damaged header, a full disk, a diverged training run); everything else is a programming
error and keeps its traceback.
"""

from __future__ import annotations

import argparse
import errno
import sys
import textwrap
import warnings
from contextlib import contextmanager
from typing import Iterator, NoReturn

EXIT_BAD_INPUT = 2
#: the shell's code for a command ended by Ctrl-C (128 + SIGINT)
EXIT_INTERRUPTED = 130


class InputError(ValueError):
    """Bad user input (missing file, wrong dimensionality, mismatched shapes...): one line, exit 2."""


#: I/O failures of the machine or the file system, with what to do about each
_OS_HINTS = {
    errno.ENOSPC: "the disk is full: free some space or write elsewhere",
    errno.EDQUOT: "the disk quota is used up: free some space or write elsewhere",
    errno.EROFS: "the file system is read-only: write elsewhere",
    errno.EACCES: "permission denied: write to a folder you own, or change its permissions",
    errno.EPERM: "operation not permitted: write to a folder you own",
    errno.EFBIG: "the file is larger than this system allows (ulimit -f): raise the limit or write elsewhere",
    errno.EIO: "the disk reported an I/O error: check the device",
    errno.ELOOP: "the path is a loop of symbolic links: point it at a real file or folder",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.ENAMETOOLONG: "a name in the path is longer than the file system allows (often 255 bytes): shorten it",
    errno.EISDIR: "it is a folder, not a file: name a file",
    errno.ENOENT: "no such file or folder: check the path",
    errno.ENXIO: "it is a device or pipe with nothing at the other end: name a regular file",
}

_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG}

_OUT_OF_MEMORY = ("DefaultCPUAllocator: can't allocate memory", "CUDA out of memory", "not enough memory")


_UNION_HEADERS = (
    "Does not validate against",
    "Subtypes:",
    "Errors:",
    "Given value type:",
    "Given value:",
    "Problem with given class_path",
    "Parser key",
)


def shorten(text: str, width: int = 200) -> str:
    """``text`` on one line, at most ``width`` characters, cut between words (`` ...`` marks a cut)."""
    return textwrap.shorten(" ".join(str(text).split()), width=width, placeholder=" ...")


def first_reason(message: str) -> str:
    """The reason in a jsonargparse error (``Parser key "a.b": <reason>``, or for a union "Does not
    validate against any of the Union subtypes ... - <reason>"): the option's full key and the first
    reason that is not about ``None`` (nested class errors followed down); other messages unchanged."""
    if not message.startswith('Parser key "') and "Does not validate against any of the Union" not in message:
        return message
    lines = [line.strip().removeprefix("- ").strip() for line in message.splitlines() if line.strip()]
    keys = [line[len('Parser key "') :].split('"')[0] for line in lines if line.startswith('Parser key "')]
    reasons = [line for line in lines if not line.startswith(_UNION_HEADERS) and "NoneType" not in line]
    if not reasons:
        return message
    given = [line for line in lines if line.startswith("Given value:")]
    expected = reasons[0].startswith("Expected") and "Got value" not in reasons[0]
    suffix = f" ({shorten(given[-1], 120)})" if given and expected else ""
    return f"--{'.'.join(keys)}: {reasons[0]}{suffix}" if keys else reasons[0] + suffix


def _os_message(error: OSError) -> str | None:
    hint = None if error.errno is None else _OS_HINTS.get(error.errno)
    if hint is None:
        return None
    verb = "write" if error.errno in _WRITE_ERRNOS else "access"
    where = f" {error.filename}" if error.filename else ""
    return f"cannot {verb}{where}: {error.strerror or error}; {hint}"


def _hint(message: str) -> str:
    """How to fix a trainer error whose message does not say it."""
    if "gpu backend" in message.lower() or "gpuaccelerator can not run" in message.lower():
        return (
            " torch sees no GPU on this machine: train on the CPU (--trainer.accelerator cpu; several CPU "
            "processes with --trainer.devices 2 --trainer.strategy ddp), or install a CUDA build of torch"
        )
    return ""


def user_message(error: BaseException) -> str | None:
    """The one line to print for a user-side failure, or ``None`` for a programming error."""
    if isinstance(error, OSError):
        return _os_message(error)
    if isinstance(error, MemoryError) or (
        isinstance(error, RuntimeError) and any(text in str(error) for text in _OUT_OF_MEMORY)
    ):
        return (
            "not enough memory for this registration: resample the images coarser, use fewer or coarser "
            "scales, or run on a machine (or GPU) with more memory"
        )
    # Lightning's MisconfigurationException (bad trainer settings), by name: register never imports Lightning
    misconfigured = any(kind.__name__ == "MisconfigurationException" for kind in type(error).__mro__)
    if isinstance(error, (ValueError, argparse.ArgumentError)) or misconfigured:  # jsonargparse: ArgumentError
        text = " ".join(first_reason(str(error)).split("\n")).strip()
        return text + _hint(text)
    return None


class RegistrationWarning(UserWarning):
    """Something the user should know about their inputs or results that does not stop the work
    (little overlap, thick slices, an inverse that did not converge). Filterable like any warning:
    ``warnings.filterwarnings("ignore", category=RegistrationWarning)``; the commands print it as
    one line, ``<program>: warning: <message>``."""


def warn(message: str) -> None:
    """Issue a :class:`RegistrationWarning` attributed to the caller's caller."""
    warnings.warn(message, RegistrationWarning, stacklevel=3)


@contextmanager
def recorded_warnings() -> Iterator[list[str]]:
    """The messages of the :class:`RegistrationWarning` issued in the block, in order, for a result
    file to keep (they are shown as well, as everywhere else)."""
    messages: list[str] = []
    shown = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, RegistrationWarning):
            messages.append(str(message))
        shown(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield messages
    finally:
        warnings.showwarning = shown


def one_line_warnings(program: str) -> None:
    """Show :class:`RegistrationWarning` as ``<program>: warning: <message>`` (one line on stderr);
    every other warning as Python shows it."""
    shown = getattr(warnings.showwarning, "shows_others", warnings.showwarning)  # not a chain of ours

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, RegistrationWarning):
            print(f"{program}: warning: {message}", file=sys.stderr if file is None else file, flush=True)
        else:
            shown(message, category, filename, lineno, file, line)

    show.shows_others = shown  # type: ignore[attr-defined]
    warnings.showwarning = show


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the problem (exit code 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def report(error: Exception, program: str, show: bool = True) -> int:
    """Print a user-side failure as ``<program>: error: <one line>`` (unless ``show`` is false: a
    DDP process other than the first) and return the exit code; re-raise a programming error."""
    message = user_message(error)
    if message is None:
        raise error
    if show:
        print(f"{program}: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def interrupted(program: str, detail: str = "") -> int:
    """Print the one line of a command ended by Ctrl-C and return :data:`EXIT_INTERRUPTED`."""
    print(f"{program}: interrupted (Ctrl-C){'; ' + detail if detail else ''}", file=sys.stderr)
    return EXIT_INTERRUPTED
