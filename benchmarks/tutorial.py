"""Run the tutorial (``docs/tutorial.md``) as a user would: every ``bash`` block of the page, in order,
in a new folder; its figures are read from what the commands wrote and saved as the record the page
shows (``benchmarks/results/tutorial.json``). ``tests/test_tutorial.py`` runs the same blocks with
smaller sizes (``TINY``).

    python benchmarks/tutorial.py [--keep FOLDER]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "tutorial.md"
BLOCK = re.compile(r"```bash\n(.*?)```", re.S)
#: the test's sizes: options added to the commands that start with each key
TINY = {
    "python -m lightning_reg.data.example_folder": "--size 16",
    "lightning-reg fit": "--trainer.max_epochs 1 --data.train_pairs 2 --model.train_solver.iterations [4,2,2]",
    "lightning-reg test": "--model.eval_solver.iterations [8,4,2]",
}
WROTE = re.compile(r"^lightning-reg \w+: wrote (\S+)$", re.M)
EPOCH = re.compile(r"^epoch (\d+): .*val/dice ([0-9.]+)", re.M)


def blocks(page: Path = PAGE) -> list[str]:
    """The page's ``bash`` blocks, in order."""
    return BLOCK.findall(page.read_text())


def _sized(block: str, options: dict[str, str]) -> str:
    """``block`` with ``options`` added to the commands they name (a command's last line gets them)."""
    lines = block.replace("\\\n", " ").splitlines()
    for index, line in enumerate(lines):
        for start, extra in options.items():
            if line.strip().startswith(start):
                lines[index] = f"{line} {extra}"
    return "\n".join(lines) + "\n"


def run_blocks(folder: Path, options: dict[str, str] | None = None) -> list[dict]:
    """Run every block in ``folder`` with bash (``set -e``); one entry per block: its text, stderr, seconds.
    RuntimeError naming the block when one fails."""
    # the commands of this Python's environment, as in a shell where it is activated
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = []
    for block in blocks():
        text = _sized(block, options or {})
        start = time.perf_counter()
        result = subprocess.run(
            ["bash", "-ec", text], cwd=folder, env=env, capture_output=True, text=True, timeout=1800, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"tutorial block failed ({result.returncode}):\n{text}\n{result.stderr[-3000:]}")
        done.append({"block": text, "stderr": result.stderr, "seconds": time.perf_counter() - start})
    return done


def figures(folder: Path, done: list[dict]) -> dict[str, dict]:
    """What the tutorial's steps gave: validation Dice per epoch, test Dice with each transform, and the
    registration of the new pair before and after, with each step's seconds."""
    summary: dict[str, dict] = {}
    for step in done:
        command = step["block"].strip().splitlines()[-1].split()[:2]
        wrote = WROTE.findall(step["stderr"])
        if command[:2] == ["lightning-reg", "fit"]:
            epochs = {
                f"fit, epoch {int(epoch) + 1}: validation": float(dice) for epoch, dice in EPOCH.findall(step["stderr"])
            }
            summary.update({name: {"dice": dice} for name, dice in epochs.items()})
            summary[list(epochs)[-1]]["seconds"] = step["seconds"]  # the whole fit
        elif command[:2] == ["lightning-reg", "test"]:
            metrics = json.loads((folder / wrote[-1] / "metrics.json").read_text())
            transform = "svf" if "eval_solver.transform svf" in step["block"] else "as trained (greedy)"
            summary[f"test, {transform}"] = {"dice": metrics["test/dice"], "seconds": step["seconds"]}
        elif "lightning-reg register" in step["block"]:
            metrics = json.loads((folder / "registered" / "metrics.json").read_text())
            summary["new pair, before registration"] = {"dice": metrics["dice_before"]}
            summary["new pair, registered"] = {"dice": metrics["dice"], "seconds": step["seconds"]}
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", type=Path, help="run in this new folder and keep it (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "tutorial.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temporary:
        folder = args.keep or Path(temporary)
        folder.mkdir(parents=True, exist_ok=True)
        summary = figures(folder, run_blocks(folder))
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from measure import machine

    record = {
        "date": datetime.date.today().isoformat(),
        "machine": f"{machine('cpu')}, {torch.get_num_threads()} thread(s), torch {torch.__version__}",
        "command": "python benchmarks/tutorial.py",
        "summary": summary,
    }
    args.out.write_text(json.dumps(record, indent=2))
    print(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
