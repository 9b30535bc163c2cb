"""The CHANGELOG's tables of moved modules are the moves the package performs (``moved.MOVED``), and
every old path still imports, warning with its new path and the release that removes it."""

import importlib
import re
import sys
from pathlib import Path

import pytest

from lightning_reg.moved import MOVED, REMOVED_IN

CHANGELOG = (Path(__file__).resolve().parents[1] / "CHANGELOG.md").read_text()


def _listed_moves() -> dict[str, tuple[str, str]]:
    """``{old: (new, release)}`` from the changelog's "Moved" tables (one-to-one rows only)."""
    moves = {}
    for release, section in re.findall(r"^## (\d+\.\d+)\.\d+.*?\n(.*?)(?=^## |\Z)", CHANGELOG, re.M | re.S):
        for old, new in re.findall(r"^\| `lightning_reg\.([\w.]+)` \| `lightning_reg\.([\w.]+)`", section, re.M):
            moves[old] = (new, release)
    return moves


def test_the_changelog_lists_every_move_and_its_release():
    listed = _listed_moves()
    missing = sorted(set(MOVED) - set(listed))
    assert not missing, missing
    assert MOVED == {old: listed[old] for old in MOVED}
    extra = sorted(set(listed) - set(MOVED) - {"evaluation"})  # the module that became a package
    assert not extra, extra
    for release in {release for _, release in MOVED.values()}:
        assert f"old paths removed in {REMOVED_IN[release]}" in CHANGELOG


@pytest.mark.parametrize("old", sorted(MOVED))
def test_every_old_path_imports_and_says_where_it_went(old):
    new, release = MOVED[old]
    sys.modules.pop(f"lightning_reg.{old}", None)  # an import elsewhere would not warn again
    said = rf"lightning_reg.{old} moved to lightning_reg.{new} in {release}; .*removed in {REMOVED_IN[release]}"
    with pytest.warns(DeprecationWarning, match=said):
        module = importlib.import_module(f"lightning_reg.{old}")
    assert module is importlib.import_module(f"lightning_reg.{new}")


def test_the_old_evaluation_module_names_still_import():
    from lightning_reg.evaluation import rows

    with pytest.warns(DeprecationWarning, match=r"evaluation.pair_rows moved to .*evaluation.rows.pair_rows in 0.3"):
        from lightning_reg.evaluation import pair_rows
    assert pair_rows is rows.pair_rows
