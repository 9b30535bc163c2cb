"""The default run as a user meets it: ``lightning-reg fit`` with no arguments, then ``lightning-reg
test`` of its last checkpoint (as trained, and with greedy 200/100/50 at test time) beside the
classical solver alone on the same test pairs (``IdentityFeatures``, so the solve sees the image
only). Every command runs in a new folder as its own process; the record
(``benchmarks/results/default_run.json``) is what the results page shows.

    python benchmarks/default_run.py [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from measure import provenance

ROOT = Path(__file__).resolve().parents[1]
WROTE = re.compile(r"^lightning-reg \w+: wrote (\S+)$", re.M)
GREEDY = ["transform greedy", "iterations [200,100,50]", "tolerance 1e-6"]
CLASSICAL = ["--model.network", "lightning_reg.nn.IdentityFeatures"]
#: each row: its label and the ``test`` options after the shared ones (``{ckpt}``: the run's last.ckpt)
ROWS = {
    "classical, LNCC, greedy 200/100/50": [*CLASSICAL, "--model.train_solver.similarity", "lncc", *GREEDY],
    "classical, MI, freeform 30/15/10 (the training solver)": [*CLASSICAL, "--model.train_solver.similarity", "mi"],
    "classical, MI, greedy 200/100/50": [*CLASSICAL, "--model.train_solver.similarity", "mi", *GREEDY],
    "learned, as trained (freeform 30/15/10)": ["--ckpt_path", "{ckpt}"],
    "learned, greedy 200/100/50 at test time": ["--ckpt_path", "{ckpt}", *GREEDY],
}


def options(row: list[str], group: str) -> list[str]:
    """``row`` with each ``"name value"`` item of :data:`GREEDY` spelled as ``--model.GROUP.name value``."""
    spelled = []
    for item in row:
        if item in GREEDY:
            name, value = item.split(" ", 1)
            spelled += [f"--model.{group}.{name}", value]
        else:
            spelled.append(item)
    return spelled


def run(command: list[str], folder: Path, threads: int) -> tuple[float, Path]:
    """Run a ``lightning-reg`` command in ``folder``; its wall seconds and the run folder it wrote."""
    environment = dict(os.environ, OMP_NUM_THREADS=str(threads), WANDB_MODE="offline")
    start = time.perf_counter()
    done = subprocess.run(command, cwd=folder, env=environment, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds, folder / WROTE.findall(done.stderr)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args()
    executable = str(Path(sys.executable).parent / "lightning-reg")
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        seconds, fit_run = run([executable, "fit", "--trainer.logger", "false"], folder, args.threads)
        summary = {"fit (no arguments)": {"seconds": seconds}}
        checkpoint = str(fit_run / "checkpoints" / "last.ckpt")
        for label, row in ROWS.items():
            group = "eval_solver" if "{ckpt}" in row else "train_solver"
            test = [executable, "test", "--trainer.logger", "false", *options(row, group)]
            seconds, test_run = run([part.replace("{ckpt}", checkpoint) for part in test], folder, args.threads)
            metrics = json.loads((test_run / "metrics.json").read_text())
            summary[label] = {
                "test Dice": metrics["test/dice"],
                "folding %": metrics["test/folding_percent"],
                "seconds": seconds,
            }
            print(f"{label}: {summary[label]}", flush=True)
    record = {**provenance(args.threads), "summary": summary}
    (args.out / "default_run.json").write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
