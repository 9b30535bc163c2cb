"""Nothing runs from the folder where a user runs a command: ``.py`` files named like the modules the
command imports (``argparse``, ``json``, ``typing`` ...) lie there, each writing a marker file if it is
ever imported, and ``python -m lightning_reg.cli`` and the runs of ``lightning-reg sweep`` (started
the same way) must not import them."""

import subprocess
import sys

import yaml
from helpers import lightning_reg

#: modules the command line imports before (or while) it starts
SHADOWED = ("argparse", "json", "typing", "random", "csv", "email", "zipfile", "shlex", "secrets", "yaml")


def _plant(folder):
    markers = folder / "markers"
    markers.mkdir()
    for name in SHADOWED:
        (folder / f"{name}.py").write_text(f"open({str(markers / name)!r}, 'w').write('ran')\n")
    return markers


def test_python_m_never_imports_a_module_from_the_working_folder(tmp_path):
    markers = _plant(tmp_path)
    for arguments in (["--help"], ["register", "--help"], ["apply", "--help"]):
        done = subprocess.run(
            [sys.executable, "-m", "lightning_reg.cli", *arguments], cwd=tmp_path, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-2000:]
    assert sorted(path.name for path in markers.iterdir()) == []


def test_a_sweeps_runs_never_import_a_module_from_the_working_folder(tmp_path):
    markers = _plant(tmp_path)
    sweep = {
        "name": "planted",
        "method": "grid",
        "metric": {"name": "val/dice", "goal": "maximize"},
        "parameters": {"trainer.max_epochs": {"values": [1]}},
        "command": ["lightning-reg", "fit", "--print_config", "${args}"],
    }
    (tmp_path / "planted.yaml").write_text(yaml.safe_dump(sweep))
    done = lightning_reg(["sweep", "planted.yaml", "--out", "summary"], tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    log = next((tmp_path / "summary" / "logs").glob("*.log")).read_text()
    assert "max_epochs: 1" in log  # the run ran, and printed its config
    assert sorted(path.name for path in markers.iterdir()) == []
