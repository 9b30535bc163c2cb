"""The README's front door cannot go stale: its Python blocks run as written, its "Register two
NIfTI files" commands write what it says they write, and its results table is the one the benchmarks'
records make. (Its install and test commands are the ones ``.ci/run`` runs.)"""

import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(language: str, text: str = README) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, re.M | re.S)


def _section(title: str) -> str:
    return README.split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]


def test_the_readme_stays_a_front_door():
    assert len(README.splitlines()) <= 250
    for link in re.findall(r"\]\(([^)#]+)\)", README):
        if not link.startswith("http"):
            assert (ROOT / link).exists(), f"README links to {link}, which does not exist"


@pytest.mark.parametrize("block", _blocks("python"), ids=lambda block: block.splitlines()[0][:40])
def test_the_python_blocks_run(block, tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", block], cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]


def test_the_register_quickstart_writes_what_it_says(tmp_path):
    (block,) = _blocks("bash", _section("Register two NIfTI files"))
    command = block.replace("\\\n", " ")
    for line in filter(None, (line.strip() for line in command.splitlines())):
        words = shlex.split(line)
        if words[0] == "python":
            words[0] = sys.executable
        elif words[0] == "lightning-reg":
            words = [sys.executable, "-m", "lightning_reg.cli", *words[1:]]
        done = subprocess.run(words, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
        assert done.returncode == 0, (line, done.stderr[-3000:])
    out = tmp_path / "registered"
    for name in re.findall(r"`([\w.]+\.(?:nii\.gz|mat|json|png))`", _section("Register two NIfTI files")):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["dice"] > metrics["dice_before"]


def test_the_results_table_is_the_one_the_records_make():
    """``benchmarks/readme_results.py`` makes it from ``benchmarks/results/*.json``; a re-run benchmark
    whose figures are not put in (``--write``) fails here."""
    spec = importlib.util.spec_from_file_location("readme_results", ROOT / "benchmarks" / "readme_results.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.readme_table(README) == module.table()
    assert module.table().count("**") == 2  # one figure in bold: the best Dice
    assert module.readme_table(README, module.WHOLE_BLOCK) == module.whole_command_table()
