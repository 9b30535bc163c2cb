"""``lightning-reg sweep FILE``: run a W&B sweep file here, without a W&B server (see ``sweep.py``),
and summarize its metric across the runs."""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

from .cli import EXIT_BAD_INPUT, OneLineParser
from .io import InputError
from .sweep import SweepRun, execute, last_error, load_sweep, next_parameters
from .sweep_summary import ranked, write_summary


class SweepParser(OneLineParser):
    """Everything after ``--`` is kept, unparsed, as ``run_args``: options for every run's command."""

    def parse_args(self, args=None, namespace=None) -> argparse.Namespace:
        args = list(sys.argv[1:] if args is None else args)
        split = args.index("--") if "--" in args else len(args)
        parsed = super().parse_args(args[:split], namespace)
        parsed.run_args = args[split + 1:]
        return parsed


def build_parser(prog: str = "lightning-reg sweep") -> argparse.ArgumentParser:
    parser = SweepParser(
        prog=prog, usage=f"{prog} FILE [--count N] [--out DIR] [--overwrite] [-- RUN OPTIONS]",
        description="Run a W&B sweep file offline (grid, random or bayes, parameters chosen by W&B's sweeps "
                    "engine); each run is an offline W&B run to upload later with wandb sync. Writes "
                    "summary.csv/.md/.png into --out.",
        epilog="Options after -- go into every run's command, before the sweep's parameters "
               "(e.g. -- --data.test_pairs 4, or -- --config configs/oasis2d.yaml).")
    parser.add_argument("file", type=Path, help="the sweep YAML (the same file works with wandb sweep)")
    parser.add_argument("--count", type=int, help="number of runs (grid: at most the grid's size; "
                        "random and bayes: required)")
    parser.add_argument("--out", type=Path, help="summary folder; default runs/sweeps/<sweep name>")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --out folder")
    return parser


def run(args: argparse.Namespace) -> dict:
    """Run the sweep; returns where its summary is and the best run."""
    config = load_sweep(args.file)
    name = str(config.get("name") or args.file.stem)
    if args.count is not None and args.count < 1:
        raise InputError(f"--count must be >= 1, got {args.count}")
    if args.count is None and config["method"] != "grid":
        raise InputError(f"a {config['method']} sweep does not end by itself: give --count N")
    folder = args.out or Path("runs") / "sweeps" / name
    if folder.exists() and not args.overwrite:
        raise InputError(f"sweep folder {folder} exists; pass --overwrite to replace it, or --out elsewhere")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    (folder / "sweep.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    runs = _run_all(config, args, folder, name)
    paths = write_summary(runs, config, folder)
    metric, goal = config["metric"]["name"], config["metric"].get("goal", "maximize")
    print(paths["markdown"].read_text(), file=sys.stderr)
    best = ranked(runs, metric, goal)[0]
    if not best.finished:
        raise InputError(f"every run failed; see {folder / 'logs'} (last: {last_error(folder, best)})")
    return {"sweep": name, "runs": len(runs), "finished": sum(run.finished for run in runs), "metric": metric,
            "best": {"run": best.run_id, **best.parameters, metric: best.metrics.get(metric)},
            "summary": str(paths["markdown"]), "plot": str(paths["plot"])}


def _run_all(config: dict, args: argparse.Namespace, folder: Path, name: str) -> list[SweepRun]:
    runs: list[SweepRun] = []
    metric = config["metric"]["name"]
    while args.count is None or len(runs) < args.count:
        parameters = next_parameters(config, runs)
        if parameters is None:
            break
        run = execute(config, parameters, args.run_args, folder, group=name)
        runs.append(run)
        with open(folder / "runs.jsonl", "a") as handle:
            handle.write(json.dumps(vars(run)) + "\n")
        shown = ", ".join(f"{key}={value}" for key, value in parameters.items())
        outcome = (f"{metric} {run.metrics[metric]:.4f}" if metric in run.metrics
                   else f"failed: {last_error(folder, run)}" if not run.finished else f"no {metric} logged")
        print(f"[{len(runs)}] {run.run_id} {shown}: {outcome} ({run.seconds:.0f} s)", file=sys.stderr)
        if run.returncode == EXIT_BAD_INPUT and len(runs) == 1:
            raise InputError(f"the first run was refused, so every run would be: {last_error(folder, run)} "
                             f"(log: {folder / 'logs' / (run.run_id + '.log')})")
    return runs
