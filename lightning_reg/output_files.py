"""Writing results safely: every file appears complete or not at all, and an output folder is
replaced only when it was written by this tool and only once its replacement is complete.

Hand-written because no library of the field does it: nibabel, torch and matplotlib write in place,
and a killed process or a full disk leaves a truncated file under the final name.
"""
from __future__ import annotations

import json
import os
import secrets
import shutil
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Iterator, Sequence

from .errors import InputError, user_message

#: the file in every output folder this tool creates; ``--overwrite`` replaces only folders that hold it
MARKER = ".lightning-reg-output"


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A temporary path beside ``path`` (same folder, same suffixes) to write to; it replaces
    ``path`` when the block ends without error and is removed when it fails."""
    path = Path(path)
    temporary = path.with_name(f".partial-{secrets.token_hex(4)}-{path.name}")
    try:
        yield temporary
        if temporary.is_file():
            with open(temporary, "rb") as handle:  # on disk before the rename makes it visible
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


class OutputFolder:
    """A folder of results that a command writes as a whole.

    :meth:`check` refuses, before any work, an existing folder without ``overwrite``, and with it
    a folder this tool did not write (no :data:`MARKER`), the working folder or one above it, and a
    folder holding any of ``protected`` (the inputs). :meth:`staged` gives a new folder beside the
    old one to write into; it replaces the old one only when the block succeeds, and is removed
    when it fails, leaving the old one as it was.
    """

    def __init__(self, folder: str | Path, overwrite: bool = False, protected: Sequence[str | Path] = (),
                 flag: str = "--out") -> None:
        self.folder, self.overwrite, self.flag = Path(folder), overwrite, flag
        self.protected = [Path(path) for path in protected if path is not None]

    def _has_content(self) -> bool:
        return self.folder.is_dir() and any(self.folder.iterdir())

    def check(self) -> None:
        """Raise :class:`InputError` if writing here could lose anything the user wrote."""
        folder = self.folder.resolve()
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"{self.flag} {self.folder} exists and is not a folder: choose a folder name")
        if _inside(Path.cwd().resolve(), folder):
            example = f", e.g. {self.flag} results" if self.flag.startswith("--") else ""
            raise InputError(f"{self.flag} {self.folder} is the working folder or holds it: name a new folder "
                             f"for the results{example}")
        for path in self.protected:
            if _inside(path.resolve(), folder):
                raise InputError(f"{self.flag} {self.folder} holds the input {path}: write the results to a "
                                 f"folder of their own")
        if not self._has_content():
            return
        if not self.overwrite:
            raise InputError(f"output folder {self.folder} exists; pass --overwrite to replace it")
        if not (self.folder / MARKER).is_file():
            raise InputError(f"{self.flag} {self.folder} was not written by lightning-reg (it has no {MARKER} "
                             f"file), so --overwrite will not delete it: choose a new folder or empty it yourself")

    def begin(self, what: str = "", staging: Path | None = None) -> Path:
        """:meth:`check`, then make the new folder (with :data:`MARKER`) to write into: ``staging``,
        or a fresh name beside the final folder."""
        self.check()
        staging = staging or self.folder.with_name(f".{self.folder.name}.partial-{secrets.token_hex(4)}")
        if (staging / MARKER).is_file():  # left by an earlier attempt that was killed
            shutil.rmtree(staging)
        staging.mkdir(parents=True)
        (staging / MARKER).write_text(json.dumps({"written_by": "lightning-reg", "version": version("lightning_reg"),
                                                  "what": what}) + "\n")
        return staging

    def commit(self, staging: Path) -> None:
        """Put the complete ``staging`` folder in the final folder's place (the old one is removed)."""
        if not self.folder.exists():
            os.rename(staging, self.folder)
            return
        if not self._has_content():
            self.folder.rmdir()
            os.rename(staging, self.folder)
            return
        old = self.folder.with_name(f".{self.folder.name}.old-{secrets.token_hex(4)}")
        os.rename(self.folder, old)
        os.rename(staging, self.folder)
        shutil.rmtree(old)

    def failed(self, staging: Path, error: BaseException) -> BaseException:
        """Remove ``staging``; the error to raise in ``error``'s place: for a user-side failure, one
        that says the final folder was left as it was."""
        shutil.rmtree(staging, ignore_errors=True)
        message = user_message(error)
        if message is None or isinstance(error, KeyboardInterrupt):
            return error
        kept = "was left as it was" if self.folder.exists() else "was not created"
        return InputError(f"{message.replace(str(staging), str(self.folder))} ({self.folder} {kept})")

    @contextmanager
    def staged(self, what: str = "") -> Iterator[Path]:
        """:meth:`begin`, the block writes into the folder it gives, :meth:`commit` (or, when the
        block fails, :meth:`failed`)."""
        staging = self.begin(what)
        try:
            yield staging
            self.commit(staging)
        except BaseException as error:
            replacement = self.failed(staging, error)
            if replacement is error:
                raise
            raise replacement from None
