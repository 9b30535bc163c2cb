"""mkdocs hooks: pages and files that live elsewhere in the repository, put into the site at build
time so that each has one home.

- ``benchmarks/results/*``: the benchmarks' dated outputs (tables, JSON, plots), served under
  ``results/data/`` for the results pages;
- ``lightning_reg/models/*.md``: the bundled models' cards, which ship inside the package, served as
  ``models/<name>.md``;
- ``<!-- cli-help: COMMAND -->`` in a page becomes ``lightning-reg COMMAND --help`` as the installed
  command prints it.
"""

from __future__ import annotations

import re
from importlib import import_module
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"results/data": ROOT / "benchmarks" / "results", "models": ROOT / "lightning_reg" / "models"}
HELP = re.compile(r"<!-- cli-help: (\w+) -->")


def on_files(files: Files, config) -> Files:
    for served, folder in SOURCES.items():
        for path in sorted(folder.rglob("*")):
            if path.is_file() and (served != "models" or path.suffix == ".md"):
                uri = f"{served}/{path.relative_to(folder).as_posix()}"
                files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def _help(command: str) -> str:
    return import_module(f"lightning_reg.cli.{command}").build_parser().format_help()


def on_page_markdown(markdown: str, page, config, files) -> str:
    return HELP.sub(lambda match: f"```text\n{_help(match.group(1))}```", markdown)
