"""mkdocs hooks: pages and files that live elsewhere in the repository, put into the site at build
time so that each has one home.

- ``benchmarks/results/*``: the benchmarks' dated outputs (tables, JSON, plots), served under
  ``results/data/`` for the results pages;
- ``lightning_reg/models/*.md``: the bundled models' cards, which ship inside the package, served as
  ``models/<name>.md``;
- ``<!-- cli-help: COMMAND -->`` in a page becomes ``lightning-reg COMMAND --help`` as the installed
  command prints it;
- ``<!-- record: NAME -->`` becomes the tables of ``benchmarks/results/NAME.json`` (its ``summary``, a
  row per key, and its ``ratios``) with the date, machine and command that made it, so a page never
  carries a figure typed by hand; ``<!-- figures: NAME -->`` the same tables with the command and a
  link to the record, for the user pages, which name no machine and no date;
- ``<!-- table: NAME -->`` becomes ``benchmarks/results/NAME.md``, the table a benchmark wrote beside
  its record, and the record's date, machine and command;
- ``<!-- cases: NAME -->`` becomes ``validation_cases.py``'s record NAME as a case-by-method table of
  mean Dice ± SD over the pairs;
- ``<!-- rows: NAME KEY [FIELD,FIELD...] -->`` becomes the list ``KEY`` of record NAME as a table, a
  row per item (only the fields named, when named);
- ``<!-- fields: KEY NAME [NAME ...] -->`` becomes the mapping ``KEY`` of each record NAME, a row per
  record;
- ``<!-- drop: CLEAN SHIFTED -->`` becomes each method's Dice in two ``real_brains.py`` records and
  the drop between them.

A record that says only when it was committed (``committed``: runs from before records carried their
date) is shown as such.
"""

from __future__ import annotations

import json
import re
from importlib import import_module
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"results/data": ROOT / "benchmarks" / "results", "models": ROOT / "lightning_reg" / "models"}
HELP = re.compile(r"<!-- cli-help: (\w+) -->")
RECORD = re.compile(r"<!-- (record|figures): ([\w.-]+) -->")
TABLE = re.compile(r"<!-- table: ([\w./-]+) -->")
CASES = re.compile(r"<!-- cases: ([\w./-]+) -->")
ROWS = re.compile(r"<!-- rows: ([\w./-]+) (\w+)(?: ([\w,]+))? -->")
FIELDS = re.compile(r"<!-- fields: (\w+) ([\w./ -]+?) -->")
DROP = re.compile(r"<!-- drop: ([\w./-]+) ([\w./-]+) -->")


def on_files(files: Files, config) -> Files:
    for served, folder in SOURCES.items():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and (served != "models" or path.suffix == ".md"):
                uri = f"{served}/{path.relative_to(folder).as_posix()}"
                files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def _help(command: str) -> str:
    return import_module(f"lightning_reg.cli.{command}").build_parser().format_help()


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"
    return str(value)


def _table(rows: dict, first: str) -> list[str]:
    """A markdown table of ``{key: {column: value}}`` (or ``{key: value}``), a row per key."""
    rows = {key: row if isinstance(row, dict) else {"value": row} for key, row in rows.items()}
    columns = list(dict.fromkeys(column for row in rows.values() for column in row))
    lines = [f"| {first} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for key, row in rows.items():
        lines.append(f"| {key} | " + " | ".join(_shown(row.get(column, "")) for column in columns) + " |")
    return lines


def _load(name: str) -> dict:
    return json.loads((SOURCES["results/data"] / f"{name}.json").read_text())


def _kind(page) -> str:
    """``record`` (date and machine shown) on the results and development pages, else ``figures``."""
    dated = page.file.src_uri.startswith("results/") or page.file.src_uri == "development.md"
    return "record" if dated else "figures"


def _made(record: dict, kind: str, name: str, page) -> str:
    """Where a record's figures come from: date, machine and command for the results pages; for the
    user pages the command and a link to the record."""
    if kind != "record":
        up = "../" * page.file.src_uri.count("/")
        return f"Made by `{record['command']}` ([the record]({up}results/data/{name}.json) says when and where)."
    when = (
        f"Made on {record['date']}" if "date" in record else f"Committed on {record['committed']} (run then or before)"
    )
    return f"{when}, {record['machine']}: `{record['command']}`"


def _record(kind: str, name: str, page) -> str:
    record = _load(name)
    lines = _table(record["summary"], "run") + [""]
    if record.get("ratios"):
        lines += _table(record["ratios"], "ratio") + [""]
    return "\n".join([*lines, _made(record, kind, name, page)])


def _written_table(name: str, page) -> str:
    text = (SOURCES["results/data"] / f"{name}.md").read_text().strip()
    if not (SOURCES["results/data"] / f"{name}.json").is_file():
        return text
    return f"{text}\n\n{_made(_load(name), _kind(page), name, page)}"


def _cases(name: str, page) -> str:
    """``validation_cases.py``'s rows as case x method: mean Dice ± SD (the largest folding where any)."""
    record = _load(name)
    cells: dict[str, dict[str, str]] = {}
    for row in record["rows"]:
        cell = f"{row['dice']:.3f} ± {row['dice_sd']:.3f}"
        if row["folding"] > 0:
            cell += f" (folding {row['folding']:.3f} %)"
        cells.setdefault(f"({row['case']}), {row['pairs']} pairs", {})[row["method"]] = cell
    return "\n".join([*_table(cells, "case"), "", _made(record, _kind(page), name, page)])


def _rows(name: str, key: str, fields: str | None, page) -> str:
    """The list ``key`` of a record (dicts of one shape) as a table, a row per item; lists are joined.
    ``fields`` (comma-separated) picks the columns."""
    record = _load(name)
    columns = [field for field, value in record[key][0].items() if not isinstance(value, dict)]
    columns = fields.split(",") if fields else columns
    lines = ["| " + " | ".join(columns) + " |", "|---" * len(columns) + "|"]
    for item in record[key]:
        cells = [
            ", ".join(map(_shown, value)) if isinstance(value, list) else _shown(value)
            for value in (item.get(field, "") for field in columns)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join([*lines, "", _made(record, _kind(page), name, page)])


def _fields(key: str, names: list[str], page) -> str:
    """The mapping ``key`` of each record, a row per record named by its file."""
    rows = {name: _load(name)[key] for name in names}
    made = [_made(_load(name), _kind(page), name, page) for name in names]
    return "\n".join([*_table(rows, "record"), "", *(f"{line}  " for line in made)])


def _drop(clean_name: str, shifted_name: str, page) -> str:
    """Each method's Dice in two ``real_brains.py`` records and the drop from the first to the second."""
    clean, shifted = _load(clean_name)["summary"], _load(shifted_name)["summary"]
    rows = {
        method: {
            "clean Dice": f"{clean[method]['dice']:.3f}",
            "shifted Dice": f"{shifted[method]['dice']:.3f}",
            "drop": f"{clean[method]['dice'] - shifted[method]['dice']:.3f}",
        }
        for method in clean
        if method in shifted
    }
    made = [_made(_load(name), _kind(page), name, page) for name in (clean_name, shifted_name)]
    return "\n".join([*_table(rows, "method"), "", *(f"{line}  " for line in made)])


def on_page_markdown(markdown: str, page, config, files) -> str:
    markdown = RECORD.sub(lambda match: _record(match.group(1), match.group(2), page), markdown)
    markdown = TABLE.sub(lambda match: _written_table(match.group(1), page), markdown)
    markdown = CASES.sub(lambda match: _cases(match.group(1), page), markdown)
    markdown = ROWS.sub(lambda match: _rows(match.group(1), match.group(2), match.group(3), page), markdown)
    markdown = FIELDS.sub(lambda match: _fields(match.group(1), match.group(2).split(), page), markdown)
    markdown = DROP.sub(lambda match: _drop(match.group(1), match.group(2), page), markdown)
    return HELP.sub(lambda match: f"```text\n{_help(match.group(1))}```", markdown)
