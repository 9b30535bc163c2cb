"""The docs site's figures come from the benchmarks' records, and the user pages name no machine or day."""

from __future__ import annotations

import importlib.util
import re
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
DATED = re.compile(r"\b20\d\d-\d\d-\d\d\b|Xeon|EPYC")


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rendered(path: Path) -> str:
    """The page's markdown after the hooks, as ``mkdocs build`` renders it."""
    page = types.SimpleNamespace(file=types.SimpleNamespace(src_uri=path.relative_to(DOCS).as_posix()))
    return _hooks().on_page_markdown(path.read_text(), page, None, None)


def _pages(dated: bool) -> list[Path]:
    pages = sorted(DOCS.rglob("*.md"))
    is_dated = [page.parts[len(DOCS.parts)] == "results" or page.name == "development.md" for page in pages]
    return [page for page, flag in zip(pages, is_dated) if flag == dated]


def _typed_tables(text: str) -> list[str]:
    """The header rows of the markdown tables written in ``text`` itself."""
    lines = ["", *text.splitlines(), ""]
    return [
        line
        for before, line, after in zip(lines, lines[1:], lines[2:])
        if line.startswith("|") and after.startswith("|---") and not before.startswith("|")
    ]


@pytest.mark.parametrize("page", _pages(dated=True), ids=lambda page: page.name)
def test_every_results_table_is_made_from_a_record(page):
    typed = _typed_tables(page.read_text())
    assert not typed, f"{page.name} types {typed}: show a record with a marker instead (docs/hooks.py)"


@pytest.mark.parametrize("page", _pages(dated=True), ids=lambda page: page.name)
def test_a_results_page_shows_where_each_record_was_made(page):
    source = page.read_text()
    expected = len(re.findall(r"<!-- (?:record|cases|rows): ", source)) + 2 * source.count("<!-- drop: ")
    expected += sum(len(names.split()) for names in re.findall(r"<!-- fields: \w+ ([\w./ -]+?) -->", source))
    expected += sum(
        (ROOT / "benchmarks" / "results" / f"{name}.json").is_file()
        for name in re.findall(r"<!-- table: ([\w./-]+) -->", source)
    )
    shown = re.findall(r"^(?:Made on|Committed on) [^:]+: `python ", _rendered(page), re.M)
    assert len(shown) == expected


@pytest.mark.parametrize("page", _pages(dated=False), ids=lambda page: page.relative_to(DOCS).as_posix())
def test_a_user_page_names_no_machine_and_no_day(page):
    found = DATED.findall(_rendered(page))
    assert not found, f"{page.relative_to(DOCS)} names {found}: machines and days belong on the results pages"
