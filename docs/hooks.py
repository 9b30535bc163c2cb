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
  its record.
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
    return f"{value:.3g}" if isinstance(value, float) else str(value)


def _table(rows: dict, first: str) -> list[str]:
    """A markdown table of ``{key: {column: value}}`` (or ``{key: value}``), a row per key."""
    rows = {key: row if isinstance(row, dict) else {"value": row} for key, row in rows.items()}
    columns = list(dict.fromkeys(column for row in rows.values() for column in row))
    lines = [f"| {first} | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for key, row in rows.items():
        lines.append(f"| {key} | " + " | ".join(_shown(row.get(column, "")) for column in columns) + " |")
    return lines


def _record(kind: str, name: str, page) -> str:
    record = json.loads((SOURCES["results/data"] / f"{name}.json").read_text())
    lines = _table(record["summary"], "run") + [""]
    if record.get("ratios"):
        lines += _table(record["ratios"], "ratio") + [""]
    if kind == "record":
        lines.append(f"Made on {record['date']}, {record['machine']}: `{record['command']}`")
    else:
        up = "../" * page.file.src_uri.count("/")
        lines.append(f"Made by `{record['command']}` ([the record]({up}results/data/{name}.json) says when and where).")
    return "\n".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    markdown = RECORD.sub(lambda match: _record(match.group(1), match.group(2), page), markdown)
    markdown = TABLE.sub(lambda match: (SOURCES["results/data"] / f"{match.group(1)}.md").read_text().strip(), markdown)
    return HELP.sub(lambda match: f"```text\n{_help(match.group(1))}```", markdown)
