"""W&B sweep files run without a W&B server: parameters chosen by W&B's own engine (the ``sweeps``
package behind ``wandb[sweeps]``, as W&B's local controller uses it), commands built as ``wandb
agent`` builds them, each run logged offline (``wandb sync`` later)."""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args

from ..errors import InputError
from ..files.strict_json import NOT_FINITE_KEY
from ..training.callbacks import METRICS_FILE_VARIABLE

with warnings.catch_warnings():  # sweeps 0.2 still spells a pydantic v1 option; harmless
    warnings.simplefilter("ignore")
    import sweeps

LOCAL_METHODS = ("grid", "random", "bayes")
ARGUMENT_MACROS = ("${args}", "${args_no_hyphens}", "${args_no_boolean_flags}", "${args_no_equals}")
OTHER_MACROS = ("${env}", "${interpreter}", "${program}")
ENVIRONMENT_MACRO = re.compile(r"\$\{envvar:([A-Z0-9_]*)\}")


@dataclass
class SweepRun:
    """One run of the sweep: its W&B id, parameters, exit code, metrics and duration (s)."""

    run_id: str
    parameters: dict
    returncode: int | None = None
    metrics: dict = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def finished(self) -> bool:
        return self.returncode == 0


def load_sweep(path: Path) -> dict:
    """The sweep configuration of ``path``, checked against W&B's schema and what runs locally."""
    if not path.is_file():
        raise InputError(f"sweep file not found: {path}")
    try:
        config = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise InputError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if not isinstance(config, dict):
        raise InputError(f"{path} must be a mapping with method, metric, parameters and command")
    violations = sweeps.schema_violations_from_proposed_config(config)
    if violations:
        raise InputError(f"{path} is not a valid W&B sweep: " + "; ".join(violations[:3]))
    _check_local(config, path)
    return config


def _check_local(config: dict, path: Path) -> None:
    if config.get("method") not in LOCAL_METHODS:
        raise InputError(
            f"{path}: method {config.get('method')!r} cannot run without W&B; use one of {', '.join(LOCAL_METHODS)}"
        )
    if not (config.get("metric") or {}).get("name"):
        raise InputError(f"{path}: metric.name is missing: name the logged value to compare, e.g. val/dice")
    command = config.get("command")
    if not isinstance(command, list) or not any(str(part) in ARGUMENT_MACROS for part in command):
        raise InputError(f"{path}: command must be a list that contains ${{args}}, where W&B puts the parameters")
    for part in map(str, command):
        if part.startswith("${") and part not in ARGUMENT_MACROS + OTHER_MACROS and not ENVIRONMENT_MACRO.search(part):
            raise InputError(
                f"{path}: command has {part}, which lightning-reg sweep does not know; use "
                f"{', '.join(ARGUMENT_MACROS + OTHER_MACROS)} or ${{envvar:NAME}}"
            )
    if "${program}" in command and not config.get("program"):
        raise InputError(f"{path}: command uses ${{program}} but the file has no program")
    missing = sorted(
        {name for part in map(str, command) for name in ENVIRONMENT_MACRO.findall(part) if name not in os.environ}
    )
    if missing:
        raise InputError(
            f"{path}: the command needs the environment variable(s) {', '.join(missing)}; set them, "
            f"e.g. {missing[0]}=... lightning-reg sweep {path}"
        )


def next_parameters(config: dict, runs: list[SweepRun]) -> dict | None:
    """The parameters of the next run, as W&B's controller would choose them (``None``: a grid is done)."""
    done = [
        sweeps.SweepRun(
            name=run.run_id,
            config={k: {"value": v} for k, v in run.parameters.items()},
            state=sweeps.RunState.finished if run.finished else sweeps.RunState.failed,
            summary_metrics=run.metrics,
        )
        for run in runs
    ]
    with warnings.catch_warnings():  # scikit-learn's GP warns on tiny bayes histories
        warnings.simplefilter("ignore")
        proposal = sweeps.next_run(config, done)
    if proposal is None:
        return None
    return {name: _plain(item["value"]) for name, item in proposal.config.items()}


def _plain(value):
    """numpy scalars (from the search) as Python numbers, so they print and serialize plainly."""
    return value.item() if hasattr(value, "item") and not isinstance(value, (list, dict, str)) else value


def build_command(config: dict, parameters: dict, extra: list[str]) -> list[str]:
    """The run's command line, as ``wandb agent`` builds it, with ``extra`` just before the parameters
    (so a ``--config`` there does not override them); ``lightning-reg`` runs in this interpreter (so a
    sweep uses the installation that started it)."""
    variables = create_sweep_command_args({"args": {k: {"value": v} for k, v in parameters.items()}})
    variables.update(env=["/usr/bin/env"], interpreter=[sys.executable], program=[str(config.get("program", ""))])
    command = []
    for part in create_sweep_command([str(part) for part in config["command"]]):
        if part in ARGUMENT_MACROS:
            command += list(extra) + variables[part[2:-1]]
        elif part.startswith("${") and part.endswith("}"):
            command += variables.get(part[2:-1], [])
        else:
            command.append(part)
    return [
        arg
        for part in command
        for arg in ([sys.executable, "-m", "lightning_reg.cli"] if part == "lightning-reg" else [part])
    ]


def execute(config: dict, parameters: dict, extra: list[str], folder: Path, group: str) -> SweepRun:
    """Run one command offline; its output goes to ``<folder>/logs/<id>.log``."""
    run = SweepRun(secrets.token_hex(4), parameters)  # a W&B run id: 8 lowercase letters and digits
    metrics_path = folder / "metrics" / f"{run.run_id}.json"
    log_path = folder / "logs" / f"{run.run_id}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    environment = dict(
        os.environ,
        # Python 3.11+: the run's interpreter (and Lightning's DDP processes, which inherit it) never
        # puts the working folder on sys.path; lightning_reg/__init__.py drops it on 3.10
        PYTHONSAFEPATH="1",
        WANDB_MODE="offline",
        WANDB_RUN_ID=run.run_id,
        WANDB_RUN_GROUP=group,
        WANDB_SILENT="true",
        **{METRICS_FILE_VARIABLE: str(metrics_path)},
    )
    command = build_command(config, parameters, extra)
    start = time.perf_counter()
    try:
        with open(log_path, "w") as log:
            log.write(" ".join(command) + "\n")
            log.flush()
            done = subprocess.run(command, env=environment, stdout=log, stderr=subprocess.STDOUT, check=False)
    except BaseException:  # Ctrl-C: a run that did not end is no result; the finished ones stay
        log_path.unlink(missing_ok=True)
        metrics_path.unlink(missing_ok=True)
        raise
    run.seconds = time.perf_counter() - start
    run.returncode = done.returncode
    if metrics_path.is_file():
        run.metrics = numbers_only(json.loads(metrics_path.read_text()))
    return run


def numbers_only(metrics: dict) -> dict:
    """A run's metrics without the values strict JSON wrote as ``null`` (and its note on them): what
    the search and the ranking compare."""
    return {key: value for key, value in metrics.items() if value is not None and key != NOT_FINITE_KEY}


def last_error(folder: Path, run: SweepRun) -> str:
    """The last line of a run's log that names an error (or its last line)."""
    lines = [line.strip() for line in (folder / "logs" / f"{run.run_id}.log").read_text().splitlines() if line.strip()]
    errors = [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["(no output)"])[-1]
