"""The code keeps its style: ruff with the configuration in pyproject.toml (120 columns, pyflakes,
pycodestyle, isort, bugbear), ruff's formatter and mypy on the whole package (``[tool.mypy]``), so
the one test command also lints and type-checks."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _tool(*arguments: str) -> subprocess.CompletedProcess:
    """``python -m <arguments>`` in the repository, its output captured."""
    return subprocess.run(
        [sys.executable, "-m", *arguments], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False
    )


def test_ruff_finds_nothing():
    done = _tool("ruff", "check", "--no-cache", str(ROOT))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_ruff_format_would_change_nothing():
    done = _tool("ruff", "format", "--check", "--no-cache", str(ROOT))
    assert done.returncode == 0, "run `ruff format`:\n" + done.stdout[-4000:] + done.stderr[-2000:]


def test_mypy_finds_nothing_in_the_package():
    done = _tool("mypy", "--no-incremental", "--no-error-summary")
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
