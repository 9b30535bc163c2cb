"""Writing results safely: every file appears complete or not at all; an output folder appears
whole, and is replaced only when it holds nothing but what this tool wrote there.

Hand-written because no library of the field does it: nibabel, torch and matplotlib write in place,
and a killed process or a full disk leaves a truncated file under the final name.

An output folder is written into a staging folder beside it (``.<name>.partial-<random>``), made
before the work starts, so that every problem of the path shows before any time is spent. Its
:data:`MARKER` is locked (``flock``) for the life of the process, so a later run tells a live
staging folder from one a killed run left (the kernel drops the lock with the process) and removes
only the latter. The final rename happens under a lock of the parent folder: of two runs into one
new folder, the first to finish wins and the second is refused.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Iterator, Sequence

from ..errors import InputError, user_message

try:
    import fcntl
except ImportError:  # not POSIX: no locks; stale staging folders are then left alone
    fcntl = None  # type: ignore[assignment]

#: the file in every output folder this tool creates; it lists the files written there, which are
#: all that ``--overwrite`` may replace
MARKER = ".lightning-reg-output"


def resolve_path(path: str | Path, flag: str = "") -> Path:
    """``path`` made absolute with its links followed; a loop of symbolic links is an :class:`InputError`
    (Python 3.11 raises ``RuntimeError`` for it, 3.13 ``OSError``)."""
    try:
        return Path(path).resolve()
    except (RuntimeError, OSError):
        where = f"{flag} " if flag else ""
        raise InputError(
            f"{where}{path} is a loop of symbolic links (a link that leads back to itself): point it at "
            f"a real file or folder"
        ) from None


def refuse_link(path: Path, flag: str) -> None:
    """An output named by a symbolic link is an :class:`InputError`: replacing it would replace the
    link, or (a folder) delete what it points to."""
    if path.is_symlink():
        raise InputError(f"{flag} {path} is a symbolic link (to {os.readlink(path)}): name its target, or a new path")


#: the temporary file of :func:`atomic_path`: ``.partial-<8 hex digits>-<final name>``
PARTIAL = re.compile(r"\.partial-[0-9a-f]{8}-.+")


def _lock(handle: int, wait: bool = True) -> str:
    """``flock`` ``handle`` exclusively: ``"locked"``, ``"busy"`` (another process holds it; only
    when not ``wait``) or ``"none"`` (no locks here: not POSIX, or a file system mounted without them,
    as some cluster file systems are; then nothing is ever judged abandoned)."""
    if fcntl is None:
        return "none"
    try:
        fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return "busy"
    except OSError:
        return "none"
    return "locked"


def _claim(path: Path) -> int:
    """Create ``path`` and lock it for as long as the returned descriptor stays open (the writer
    opens the same file by name, so the lock stays on what it writes)."""
    handle = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    _lock(handle)
    return handle


def _remove_abandoned_files(folder: Path) -> None:
    """Remove the temporary files of writers that are gone (killed with ``kill -9``, a power cut):
    no process holds their lock."""
    for left in folder.glob(".partial-*"):
        if not PARTIAL.fullmatch(left.name) or not left.is_file() or left.is_symlink():
            continue
        try:
            handle = os.open(left, os.O_RDONLY)
        except OSError:
            continue
        try:
            if _lock(handle, wait=False) == "locked":  # else a live writer's, or no way to tell
                left.unlink(missing_ok=True)
        finally:
            os.close(handle)


@contextmanager
def atomic_path(path: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """A temporary path beside ``path`` (same folder, same suffixes) to write to; it replaces
    ``path`` when the block ends without error and is removed when it fails. Without ``overwrite``,
    a ``path`` that another process wrote meanwhile is kept and this is an :class:`InputError`
    (the check and the rename happen under the folder's lock). ``~`` is the home folder, as nibabel
    reads it. Temporary files that killed writers left in the folder are removed."""
    path = Path(path).expanduser()
    temporary = path.with_name(f".partial-{secrets.token_hex(4)}-{path.name}")
    handle = _claim(temporary)
    try:
        yield temporary
        if temporary.is_file():
            with open(temporary, "rb") as written:  # on disk before the rename makes it visible
                os.fsync(written.fileno())
        with _locked_folder(path.parent):
            if not overwrite and (path.exists() or path.is_symlink()):
                raise InputError(
                    f"{path} was written by another process while this one worked; it was kept and this "
                    f"result discarded: choose another name, or pass --overwrite"
                )
            os.replace(temporary, path)
        _remove_abandoned_files(path.parent)
    finally:
        temporary.unlink(missing_ok=True)
        os.close(handle)


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as temporary:
        temporary.write_text(text)


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _entries(folder: Path) -> list[str]:
    """Every file, link and empty folder under ``folder``, as relative POSIX paths (folders end in ``/``)."""
    found = []
    for root, folders, files in os.walk(folder):
        relative = Path(root).relative_to(folder)
        found += [(relative / name).as_posix() for name in files]
        found += [(relative / name).as_posix() for name in folders if os.path.islink(Path(root) / name)]
        if not folders and not files and root != str(folder):
            found.append(relative.as_posix() + "/")
    return sorted(found)


def _recorded(folder: Path) -> set[str] | None:
    """The files the marker of ``folder`` lists, or ``None`` when it lists none (no marker, a marker
    of an earlier lightning-reg, or one that cannot be read)."""
    try:
        files = json.loads((folder / MARKER).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return set(files) if isinstance(files, list) else None


def foreign_entries(folder: Path) -> list[str]:
    """The top-level names in ``folder`` (folders with a trailing ``/``) holding anything its marker
    does not list as written by lightning-reg."""
    recorded = _recorded(folder) or set()
    foreign = [entry for entry in _entries(folder) if entry != MARKER and entry not in recorded]
    return sorted({entry.split("/")[0] + ("/" if "/" in entry else "") for entry in foreign})


@contextmanager
def _locked_folder(folder: Path) -> Iterator[None]:
    """An exclusive lock on ``folder`` itself, held for the block (commits into it are serialized)."""
    if fcntl is None:  # not POSIX: a folder cannot be opened to lock it
        yield
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        _lock(handle)
        yield
    finally:
        os.close(handle)


def _lock_marker(staging: Path) -> int:
    """Lock the marker of a staging folder for as long as the returned descriptor stays open."""
    handle = os.open(staging / MARKER, os.O_RDONLY)
    _lock(handle)
    return handle


def _abandoned(staging: Path) -> bool:
    """True for a staging folder whose writer is gone: no process holds its marker's lock, or (seen
    under the parent folder's lock, where a live run makes, marks and locks it at once) it has no marker."""
    if not (staging / MARKER).is_file():
        return fcntl is not None
    handle = os.open(staging / MARKER, os.O_RDONLY)
    try:
        return _lock(handle, wait=False) == "locked"
    finally:
        os.close(handle)


class OutputFolder:
    """A folder of results that a command writes as a whole.

    :meth:`check` refuses, before any work, a path that cannot be written (a file on the way, a
    folder without write permission, a loop of links), an existing folder without ``overwrite``,
    and with it a folder this tool did not write (no :data:`MARKER`) or that holds anything besides
    what it wrote (the foreign names are given), the working folder or one above it, and a folder
    holding any of ``protected`` (the inputs). :meth:`begin` makes the staging folder beside it;
    :meth:`commit` puts it in the final folder's place; :meth:`failed` removes it.
    """

    def __init__(
        self, folder: str | Path, overwrite: bool = False, protected: Sequence[str | Path] = (), flag: str = "--out"
    ) -> None:
        self.folder, self.overwrite, self.flag = Path(folder), overwrite, flag
        self.protected = [Path(path) for path in protected if path is not None]
        self._locks: dict[Path, int | None] = {}

    def _has_content(self) -> bool:
        return self.folder.is_dir() and any(self.folder.iterdir())

    def _check_writable(self, folder: Path) -> None:
        """The nearest existing folder above ``folder`` (the absolute path) must be a folder we may write into."""
        above = folder.parent
        while not above.exists() and above != above.parent:
            above = above.parent
        if not above.is_dir():
            raise InputError(f"{self.flag} {self.folder}: {above} is a file, not a folder; choose another path")
        if not os.access(above, os.W_OK | os.X_OK):
            raise InputError(
                f"cannot write into {above} (permission denied): choose a folder you can write to for {self.flag}"
            )

    def _check_replaceable(self) -> None:
        """An existing folder with content may be replaced only with ``overwrite``, and only when it
        holds nothing but what lightning-reg wrote there."""
        if not self._has_content():
            return
        if not self.overwrite:
            raise InputError(f"output folder {self.folder} exists; pass --overwrite to replace it")
        if not (self.folder / MARKER).is_file():
            raise InputError(
                f"{self.flag} {self.folder} was not written by lightning-reg (it has no {MARKER} "
                f"file), so --overwrite will not delete it: choose a new folder or empty it yourself"
            )
        foreign = foreign_entries(self.folder)
        if foreign:
            older = (
                " (written by an earlier lightning-reg, which did not list its files)"
                if _recorded(self.folder) is None
                else ""
            )
            raise InputError(
                f"{self.flag} {self.folder} holds what lightning-reg did not write there{older}: "
                f"{', '.join(foreign[:8])}{' ...' if len(foreign) > 8 else ''}; --overwrite replaces "
                f"a folder only when nothing else is in it: move those out, or choose a new folder"
            )

    def check(self) -> None:
        """Raise :class:`InputError` if writing here could fail or lose anything the user wrote."""
        refuse_link(self.folder, self.flag)
        folder = resolve_path(self.folder, self.flag)
        if self.folder.exists() and not self.folder.is_dir():
            raise InputError(f"{self.flag} {self.folder} exists and is not a folder: choose a folder name")
        self._check_writable(folder)
        if _inside(Path.cwd().resolve(), folder):
            example = f", e.g. {self.flag} results" if self.flag.startswith("--") else ""
            raise InputError(
                f"{self.flag} {self.folder} is the working folder or holds it: name a new folder "
                f"for the results{example}"
            )
        for path in self.protected:
            if _inside(resolve_path(path), folder):
                raise InputError(
                    f"{self.flag} {self.folder} holds the input {path}: write the results to a folder of their own"
                )
        self._check_replaceable()

    def _staging_names(self) -> list[Path]:
        parent = self.folder.parent
        return sorted(parent.glob(f".{self.folder.name}.partial-*")) + sorted(parent.glob(f".{self.folder.name}.old-*"))

    def _clean_up(self, staging: Path) -> None:
        """Remove what killed runs left beside the final folder (called under the parent's lock):
        abandoned staging folders, and an old folder a killed commit had moved aside (put back when
        the final folder is missing, else removed)."""
        for left in [*self._staging_names(), staging]:
            if ".old-" in left.name and left.is_dir():
                if not self.folder.exists():
                    os.rename(left, self.folder)
                else:
                    shutil.rmtree(left)
            elif left.is_dir() and _abandoned(left):
                shutil.rmtree(left)
        if staging.exists():
            raise InputError(
                f"{staging} is being written by another lightning-reg process: wait for it to end, or "
                f"choose another {self.flag}"
            )

    def begin(self, what: str = "", staging: Path | None = None) -> Path:
        """:meth:`check`, then make the new folder (with :data:`MARKER`, locked) to write into:
        ``staging``, or a fresh name beside the final folder."""
        self.check()
        staging = staging or self.folder.with_name(f".{self.folder.name}.partial-{secrets.token_hex(4)}")
        staging.parent.mkdir(parents=True, exist_ok=True)
        # made, marked and locked under the parent's lock: a staging folder another run sees under that
        # lock without a marker was left by a run killed in between, and is removed as abandoned
        with _locked_folder(staging.parent):
            self._clean_up(staging)
            staging.mkdir()
            (staging / MARKER).write_text(
                json.dumps({"written_by": "lightning-reg", "version": version("lightning_reg"), "what": what}) + "\n"
            )
            self._locks[staging] = _lock_marker(staging)
        return staging

    def _release(self, staging: Path) -> None:
        handle = self._locks.pop(staging, None)
        if handle is not None:
            os.close(handle)

    @staticmethod
    def record(folder: Path) -> None:
        """List the files now in ``folder`` in its marker: all that a later ``--overwrite`` may replace."""
        marker = json.loads((folder / MARKER).read_text())
        marker["files"] = [entry for entry in _entries(folder) if entry != MARKER]
        (folder / MARKER).write_text(json.dumps(marker) + "\n")  # in place: the lock stays on this file

    def reopen(self) -> Path:
        """The existing final folder, to go on writing in (``--resume``): it must be one lightning-reg
        wrote, and no other process may be writing in it (its marker is locked until :meth:`close`)."""
        if not (self.folder / MARKER).is_file():
            raise InputError(f"{self.flag} {self.folder} is not a folder lightning-reg wrote: nothing to resume there")
        handle = os.open(self.folder / MARKER, os.O_RDONLY)
        if _lock(handle, wait=False) == "busy":
            os.close(handle)
            raise InputError(f"another lightning-reg process is writing in {self.folder}: wait for it")
        self._locks[self.folder] = handle
        return self.folder

    def close(self, folder: Path) -> None:
        """After writing in a :meth:`reopen` ed folder: list its files in its marker and unlock it."""
        self.record(folder)
        self._release(folder)

    def commit(self, staging: Path) -> None:
        """Put the complete ``staging`` folder in the final folder's place, listing its files in the
        marker. A folder that appeared meanwhile (another run) is kept, and this is an error, unless
        ``overwrite`` (then it is replaced when it may be: :meth:`check`)."""
        self.record(staging)
        with _locked_folder(staging.parent):
            if self._has_content() and not self.overwrite:
                raise InputError(
                    f"{self.flag} {self.folder} was written by another run while this one worked; its "
                    f"results were kept and this run's discarded: choose another {self.flag}, or pass "
                    f"--overwrite"
                )
            self._check_replaceable()
            if self.folder.is_dir() and not self._has_content():
                self.folder.rmdir()
            if not self.folder.exists():
                os.rename(staging, self.folder)
            else:
                old = self.folder.with_name(f".{self.folder.name}.old-{secrets.token_hex(4)}")
                os.rename(self.folder, old)
                os.rename(staging, self.folder)
                shutil.rmtree(old)
        self._release(staging)

    def failed(self, staging: Path, error: BaseException) -> BaseException:
        """Remove ``staging``; the error to raise in ``error``'s place: for a user-side failure, one
        that says the final folder was left as it was."""
        shutil.rmtree(staging, ignore_errors=True)
        self._release(staging)
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
