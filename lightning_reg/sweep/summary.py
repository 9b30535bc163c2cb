"""The summary of a sweep: a CSV and a markdown table of every run's parameters and metric, best
first, and a plot of the metric across runs."""

from __future__ import annotations

from pathlib import Path

from matplotlib.figure import Figure

from ..evaluation.pictures import save_figure
from ..evaluation.rows import write_rows
from ..files.output_folder import write_text
from .engine import SweepRun


def ranked(runs: list[SweepRun], metric: str, goal: str) -> list[SweepRun]:
    """Runs with the metric, best first; then the runs without it (failed) in their order."""
    scored = [run for run in runs if run.finished and metric in run.metrics]
    scored.sort(key=lambda run: run.metrics[metric], reverse=goal != "minimize")
    return scored + [run for run in runs if run not in scored]


def write_summary(runs: list[SweepRun], config: dict, folder: Path) -> dict[str, Path]:
    """``summary.csv``, ``summary.md`` and ``summary.png`` in ``folder``; returns their paths."""
    metric, goal = config["metric"]["name"], config["metric"].get("goal", "maximize")
    names = list(dict.fromkeys(name for run in runs for name in run.parameters))
    order = ranked(runs, metric, goal)
    rows = [
        {
            "run": run.run_id,
            **run.parameters,
            metric: run.metrics.get(metric, ""),
            "state": "finished" if run.finished else f"failed ({run.returncode})",
            "seconds": round(run.seconds, 1),
        }
        for run in order
    ]
    paths = {"csv": folder / "summary.csv", "markdown": folder / "summary.md", "plot": folder / "summary.png"}
    write_rows(paths["csv"], rows)
    write_text(paths["markdown"], markdown(rows, ["run", *names, metric, "state", "seconds"]) + "\n")
    save_figure(plot(runs, names, metric, goal, config.get("name", folder.name)), paths["plot"])
    return paths


def markdown(rows: list[dict], columns: list[str]) -> str:
    """A markdown table of ``rows`` with ``columns``; numbers to 4 significant digits."""

    def cell(value) -> str:
        return f"{value:.4g}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(column, "")) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def plot(runs: list[SweepRun], names: list[str], metric: str, goal: str, title: str) -> Figure:
    """The metric of each run in run order (labelled by the parameters that vary), with the best so far."""
    varying = [name for name in names if len({repr(run.parameters.get(name)) for run in runs}) > 1] or names[:1]
    labels = [", ".join(_short(run.parameters.get(name)) for name in varying) for run in runs]
    values = [run.metrics.get(metric, float("nan")) if run.finished else float("nan") for run in runs]
    figure = Figure(figsize=(max(6.0, 0.6 * len(runs) + 2), 4.2))
    axis = figure.subplots()
    axis.bar(range(len(runs)), values, color="tab:blue", alpha=0.8, label=metric)
    best, so_far = [], None
    for value in values:
        if value == value:
            better = so_far is None or (value < so_far if goal == "minimize" else value > so_far)
            so_far = value if better else so_far
        best.append(so_far if so_far is not None else float("nan"))
    axis.step(range(len(runs)), best, where="mid", color="tab:red", label="best so far")
    finite = [value for value in values if value == value]
    if finite:
        spread = max(finite) - min(finite)
        axis.set_ylim(min(finite) - 0.2 * spread - 1e-3, max(finite) + 0.2 * spread + 1e-3)
    axis.set_xticks(range(len(runs)), labels, rotation=45, ha="right", fontsize=8)
    axis.set_ylabel(metric)
    axis.set_title(f"sweep {title}: {metric} ({goal}) by run\nvaried: {', '.join(varying)}", fontsize=9)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _short(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)
