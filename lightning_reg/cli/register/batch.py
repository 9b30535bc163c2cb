"""``lightning-reg register --pairs CSV``: many registrations in one process, so that the start-up
(Python, torch, a checkpoint) is paid once. Each pair is written as ``register`` writes one, into
``<out>/<name>/``; ``<out>/registrations.csv`` lists each pair's outcome as it ends."""

from __future__ import annotations

import argparse
import csv
import io
import sys
import time
from pathlib import Path

from ...errors import InputError, user_message
from ...files.output_folder import write_text

#: the CSV's path columns, named as register's options
PATH_COLUMNS = (
    "fixed",
    "moving",
    "fixed_seg",
    "moving_seg",
    "fixed_mask",
    "moving_mask",
    "fixed_landmarks",
    "moving_landmarks",
)
#: the options a pair's row gives, so not given on the command line with --pairs
ROW_OPTIONS = tuple(f"--{name.replace('_', '-')}" for name in PATH_COLUMNS)
SUMMARY_FILE = "registrations.csv"
SUMMARY_COLUMNS = ("name", "status", "dice", "seconds", "wall_seconds", "out")


def read_pairs(path: Path) -> list[dict]:
    """The rows of a pairs CSV: ``name`` (the output folder; default ``pair-<row>``) and the paths by
    column, relative ones taken from the CSV's folder. InputError for what a user must fix."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"--pairs {path}: cannot read it ({error})") from None
    reader = csv.DictReader(io.StringIO(text))
    columns = [name.strip() for name in reader.fieldnames or ()]
    unknown = sorted(set(columns) - {"name", *PATH_COLUMNS})
    if "fixed" not in columns or "moving" not in columns or unknown:
        raise InputError(
            f"--pairs {path}: the header must name the columns fixed and moving, and may name name, "
            f"{', '.join(PATH_COLUMNS[2:])}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else f"; it has: {', '.join(columns) or 'nothing'}")
        )
    reader.fieldnames = columns
    pairs, names = [], set()
    for line, row in enumerate(reader, start=2):
        pair = _pair(row, line, path)
        if pair["name"] in names:
            raise InputError(f"--pairs {path}, line {line}: the name {pair['name']!r} is used twice")
        names.add(pair["name"])
        pairs.append(pair)
    if not pairs:
        raise InputError(f"--pairs {path}: no pairs (a header line and one line per pair)")
    return pairs


def _pair(row: dict, line: int, path: Path) -> dict:
    values = {key: (value or "").strip() for key, value in row.items() if key is not None}
    name = values.get("name") or f"pair-{line - 1:04d}"
    if name in (".", "..") or "/" in name or "\\" in name:
        raise InputError(f"--pairs {path}, line {line}: name {name!r} must be a plain folder name")
    missing = [column for column in ("fixed", "moving") if not values.get(column)]
    if missing:
        raise InputError(f"--pairs {path}, line {line}: no {' and no '.join(missing)} image")
    paths = {key: (path.parent / value).resolve() for key, value in values.items() if key in PATH_COLUMNS and value}
    return {"name": name, **paths}


def check_arguments(args: argparse.Namespace) -> None:
    """With ``--pairs``, the images come from the CSV; without it, ``--fixed`` and ``--moving`` are needed."""
    if args.pairs is None:
        missing = [flag for flag in ("--fixed", "--moving") if getattr(args, flag[2:]) is None]
        if missing:
            raise InputError(f"give {' and '.join(missing)} (or --pairs CSV for many pairs)")
        return
    given = [flag for flag in ROW_OPTIONS if getattr(args, flag[2:].replace("-", "_")) is not None]
    if given:
        raise InputError(f"--pairs takes each pair's files from its CSV; leave out {', '.join(given)}")


def run_batch(args: argparse.Namespace, register_one) -> dict:
    """Register every pair of ``args.pairs`` with ``register_one`` (``register.run``) and the other
    options of ``args``; a pair that fails for a reason of its own (a missing file, a bad header) is
    reported and the next one runs, and the batch ends in an InputError that counts them. Returns the
    counts and ``out``."""
    pairs = read_pairs(args.pairs)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    for number, pair in enumerate(pairs, start=1):
        one = argparse.Namespace(**{**vars(args), **pair, "out": out / pair["name"], "pairs": None})
        start = time.perf_counter()
        try:
            report = register_one(one)
            row = {"status": "ok", "dice": report.get("dice"), "seconds": report.get("seconds")}
        except Exception as error:  # a pair's own problem; a programming error still stops the batch
            message = user_message(error)
            if message is None:
                raise
            print(f"lightning-reg register: pair {pair['name']}: error: {message}", file=sys.stderr, flush=True)
            row = {"status": f"error: {message}"}
        rows.append({"name": pair["name"], **row, "wall_seconds": time.perf_counter() - start, "out": str(one.out)})
        if not args.quiet:
            print(f"lightning-reg register: {number}/{len(pairs)} pairs done", file=sys.stderr, flush=True)
        write_text(out / SUMMARY_FILE, _summary(rows))
    failed = sum(row["status"] != "ok" for row in rows)
    if failed:  # a pipeline must see it in the exit status
        raise InputError(f"{failed} of {len(rows)} pairs failed; {out / SUMMARY_FILE} says why for each")
    return {"pairs": len(rows), "failed": failed, "summary": str(out / SUMMARY_FILE), "out": str(out)}


def _summary(rows: list[dict]) -> str:
    handle = io.StringIO()
    writer = csv.DictWriter(handle, fieldnames=SUMMARY_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: "" if row.get(key) is None else row[key] for key in SUMMARY_COLUMNS})
    return handle.getvalue()
