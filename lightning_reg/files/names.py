"""Names read from a user's data (subject lists, dataset JSONs, pair ids) become paths only here,
once they are known to stay inside their folder: a line ``../..`` in ``subjects.txt`` is an error,
never a place to read or write."""

from __future__ import annotations

import re
from pathlib import Path, PurePath

from ..errors import InputError

#: what may not appear in one file name: separators of any system, NUL and control characters
_UNSAFE = re.compile(r"[/\\\x00-\x1f\x7f]")


def confined(folder: str | Path, name: str, what: str, single: bool = False) -> Path:
    """``folder / name`` for a relative ``name`` with no ``..`` part (``single``: one folder or file
    name, no ``/``); else an :class:`InputError` that names ``what`` (where the name was read)."""
    parts = PurePath(name.replace("\\", "/")).parts
    escapes = not parts or PurePath(name).is_absolute() or name.startswith(("/", "\\")) or ".." in parts
    if escapes or (single and (len(parts) != 1 or parts[0] == ".")) or "\x00" in name:
        shape = "a folder or file name" if single else "a path relative to it, without '..'"
        raise InputError(f"{what}: {name!r} is not {shape} inside {folder}; only names inside the data folder are read")
    return Path(folder) / name


def file_name(text: str) -> str:
    """``text`` as one file or folder name (for ids read from data): separators and control
    characters become ``_``, leading dots are dropped, so it can never name a parent or hidden place."""
    safe = _UNSAFE.sub("_", str(text)).lstrip(".")
    return safe[:200] or "_"
