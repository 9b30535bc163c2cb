"""``lightning-reg sweep FILE``: run a W&B sweep file here, without a W&B server (see ``sweep.py``),
and summarize its metric across the runs."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

from ..errors import EXIT_BAD_INPUT, InputError, OneLineParser, user_message
from ..files import strict_json
from ..files.output_folder import OutputFolder, write_text
from ..sweep.engine import SweepRun, execute, last_error, load_sweep, next_parameters, numbers_only
from ..sweep.summary import ranked, write_summary
from .parsing import user_path


class SweepParser(OneLineParser):
    """Everything after ``--`` is kept, unparsed, as ``run_args``: options for every run's command."""

    def parse_args(self, args: Any = None, namespace: Any = None) -> Any:
        args = list(sys.argv[1:] if args is None else args)
        split = args.index("--") if "--" in args else len(args)
        parsed = super().parse_args(args[:split], namespace)
        parsed.run_args = args[split + 1 :]
        return parsed


def build_parser(prog: str = "lightning-reg sweep") -> argparse.ArgumentParser:
    parser = SweepParser(
        prog=prog,
        usage=f"{prog} FILE [--count N] [--out DIR] [--overwrite | --resume] [-- RUN OPTIONS]",
        description="Run a W&B sweep file offline (grid, random or bayes, parameters chosen by W&B's sweeps "
        "engine); each run is an offline W&B run to upload later with wandb sync. Writes "
        "summary.csv/.md/.png into --out.",
        epilog="Options after -- go into every run's command, before the sweep's parameters "
        "(e.g. -- --data.test_pairs 4, or -- --config configs/oasis2d.yaml).",
    )
    parser.add_argument("file", type=user_path, help="the sweep YAML (the same file works with wandb sweep)")
    parser.add_argument(
        "--count", type=int, help="number of runs (grid: at most the grid's size; random and bayes: required)"
    )
    parser.add_argument("--out", type=user_path, help=f"summary folder; default {SWEEP_ROOT}/<sweep name>")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an --out folder of an earlier sweep once this one is complete"
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="go on with the sweep in --out (one stopped by Ctrl-C or a failure): its finished runs count "
        "towards --count and inform the search",
    )
    return parser


#: every run of a sweep, one JSON record a line, rewritten after each run
RUNS_FILE = "runs.jsonl"
#: where sweeps write their folders by default; a sweep file's name is a folder name under it
SWEEP_ROOT = Path("runs") / "sweeps"
SWEEP_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def sweep_name(config: dict, path: Path) -> str:
    """The sweep's name (its file's ``name:``, else the file name): a plain folder name, never a path,
    since the default output folder is ``SWEEP_ROOT/<name>``."""
    name = str(config.get("name") or path.stem)
    if not SWEEP_NAME.fullmatch(name) or name in (".", ".."):
        raise InputError(
            f"{path}: name {name!r} must be a plain folder name (letters, digits, '.', '_', '-'; no "
            f"'/'), as the sweep is written to {SWEEP_ROOT}/<name>; choose another name or pass --out"
        )
    return name


def run(args: argparse.Namespace) -> dict:
    """Run the sweep (or go on with one, ``--resume``); returns where its summary is and the best run.
    Finished runs are results: on Ctrl-C or a failure they stay in ``--out`` and ``--resume`` goes on."""
    config = load_sweep(args.file)
    name = sweep_name(config, args.file)
    if args.count is not None and args.count < 1:
        raise InputError(f"--count must be >= 1, got {args.count}")
    if args.count is None and config["method"] != "grid":
        raise InputError(f"a {config['method']} sweep does not end by itself: give --count N")
    final = args.out or SWEEP_ROOT / name
    output = OutputFolder(final, args.overwrite, [args.file])
    runs: list[SweepRun] = []
    if args.resume:
        if args.overwrite:
            raise InputError("--resume goes on with the sweep in --out and --overwrite replaces it: give one of them")
        folder = output.reopen()
        runs += earlier_runs(folder, config)
    else:
        _refuse_unasked_resume(final, args.overwrite)
        folder = output.begin("lightning-reg sweep")
        write_text(folder / "sweep.yaml", yaml.safe_dump(config, sort_keys=False))
    try:
        _run_all(config, args, folder, name, runs)
        paths = write_summary(runs, config, folder)
    except BaseException as error:
        if not any(run.finished for run in runs):  # nothing worth keeping: as if it never started
            raise (error if args.resume else output.failed(folder, error)) from None
        write_summary(runs, config, folder)
        _settle(output, folder, args.resume)
        kept = (
            f"{sum(run.finished for run in runs)} finished run(s) are kept in {final}; "
            f"lightning-reg sweep {args.file} --out {final} --resume goes on"
        )
        if isinstance(error, KeyboardInterrupt):
            raise KeyboardInterrupt(kept) from None
        message = user_message(error)
        if message is None:
            raise
        raise InputError(f"{message} ({kept})") from None
    _settle(output, folder, args.resume)
    metric, goal = config["metric"]["name"], config["metric"].get("goal", "maximize")
    print((final / paths["markdown"].name).read_text(), file=sys.stderr)
    best = ranked(runs, metric, goal)[0]
    if not best.finished:
        raise InputError(f"every run failed (last: {last_error(final, best)}); their logs are in {final / 'logs'}")
    return {
        "sweep": name,
        "runs": len(runs),
        "finished": sum(run.finished for run in runs),
        "metric": metric,
        "best": {"run": best.run_id, **best.parameters, metric: best.metrics.get(metric)},
        "summary": str(final / paths["markdown"].name),
        "plot": str(final / paths["plot"].name),
        "out": str(final),
    }


def _refuse_unasked_resume(final: Path, overwrite: bool) -> None:
    if (final / RUNS_FILE).is_file() and not overwrite:
        raise InputError(
            f"{final} holds a sweep already ({len((final / RUNS_FILE).read_text().splitlines())} runs): "
            f"--resume goes on with it, --overwrite replaces it"
        )


def _settle(output: OutputFolder, folder: Path, resumed: bool) -> None:
    """What was written becomes the final folder: a new sweep's staging folder takes its place; a
    resumed one lists its new files in its marker."""
    if resumed:
        output.close(folder)
    else:
        output.commit(folder)


def earlier_runs(folder: Path, config: dict) -> list[SweepRun]:
    """The runs recorded in ``folder`` by the sweep of ``config`` (an :class:`InputError` if the
    folder holds another sweep)."""
    recorded = folder / "sweep.yaml"
    if not recorded.is_file() or yaml.safe_load(recorded.read_text()) != config:
        raise InputError(
            f"{folder} holds another sweep than this file (its sweep.yaml differs): resume it with the file it "
            f"was started with, or choose another --out"
        )
    runs = []
    lines = (folder / RUNS_FILE).read_text().splitlines() if (folder / RUNS_FILE).is_file() else []
    for line in lines:
        record = json.loads(line)
        metrics = numbers_only(record.get("metrics", {}))
        runs.append(SweepRun(record["run_id"], record["parameters"], record["returncode"], metrics, record["seconds"]))
    return runs


def _run_all(config: dict, args: argparse.Namespace, folder: Path, name: str, runs: list[SweepRun]) -> None:
    """Run until ``--count`` runs (earlier ones included) or the grid's end, appending to ``runs``."""
    metric = config["metric"]["name"]
    while args.count is None or len(runs) < args.count:
        parameters = next_parameters(config, runs)
        if parameters is None:
            break
        run = execute(config, parameters, args.run_args, folder, group=name)
        runs.append(run)
        write_text(folder / RUNS_FILE, "".join(strict_json.dumps(vars(done)) + "\n" for done in runs))
        shown = ", ".join(f"{key}={value}" for key, value in parameters.items())
        outcome = (
            f"{metric} {run.metrics[metric]:.4f}"
            if metric in run.metrics
            else f"failed: {last_error(folder, run)}"
            if not run.finished
            else f"no {metric} logged"
        )
        print(f"[{len(runs)}] {run.run_id} {shown}: {outcome} ({run.seconds:.0f} s)", file=sys.stderr)
        if run.returncode == EXIT_BAD_INPUT and len(runs) == 1:
            raise InputError(f"the first run was refused, so every run would be: {last_error(folder, run)}")
