"""`lightning-reg sweep`: the shipped sweep files are valid W&B sweeps whose parameters are
LightningCLI options; a tiny grid sweep runs offline through the CLI and writes its summary; bad
sweep files are refused naming the bad key."""

import csv
from pathlib import Path

import pytest
import yaml
from helpers import lightning_reg

from lightning_reg.cli import main
from lightning_reg.sweep.engine import build_command, load_sweep, next_parameters

SWEEPS = Path(__file__).resolve().parents[2] / "sweeps"
SHIPPED = {"transforms.yaml": "test", "solver.yaml": "validate", "train.yaml": "fit"}


@pytest.mark.parametrize("name", list(SHIPPED))
def test_shipped_sweeps_are_valid_and_their_parameters_are_cli_options(name, trained_run, tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTNING_REG_RUN", str(trained_run))
    config = load_sweep(SWEEPS / name)
    parameters = next_parameters(config, [])
    assert set(parameters) == set(config["parameters"])
    command = build_command(config, parameters, [])
    subcommand = command.index(SHIPPED[name])
    assert command[subcommand - 2 : subcommand] == ["-m", "lightning_reg.cli"]
    assert all(f"--{key}={value}" in command for key, value in parameters.items())
    done = lightning_reg([*command[subcommand:], "--print_config"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = yaml.safe_load(done.stdout)
    for key, value in parameters.items():
        node = printed
        for part in key.split("."):
            node = node[part]
        assert node == value, (key, node, value)


def test_random_search_samples_inside_the_distributions(monkeypatch, trained_run):
    monkeypatch.setenv("LIGHTNING_REG_RUN", str(trained_run))
    config = load_sweep(SWEEPS / "solver.yaml")
    weights = [next_parameters(config, [])["model.eval_solver.regularizer_weight"] for _ in range(20)]
    assert all(1e-3 <= weight <= 1.0 for weight in weights) and len(set(weights)) == 20
    assert min(weights) < 0.03  # log-uniform: a fifth of the draws fall below 0.03 on average


def test_a_tiny_grid_sweep_runs_offline_and_writes_its_summary(tmp_path, trained_run):
    sweep = yaml.safe_load((SWEEPS / "transforms.yaml").read_text())
    sweep["parameters"]["model.eval_solver.transform"]["values"] = ["affine", "greedy"]
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(sweep))
    done = lightning_reg(
        [
            "sweep",
            "tiny.yaml",
            "--out",
            "summary",
            "--",
            "--data.test_pairs",
            "2",
            "--model.eval_solver.iterations",
            "[5,5,5]",
        ],
        tmp_path,
        LIGHTNING_REG_RUN=str(trained_run),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with open(tmp_path / "summary" / "summary.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert sorted(row["model.eval_solver.transform"] for row in rows) == ["affine", "greedy"]
    assert all(row["state"] == "finished" and 0 < float(row["test/dice"]) <= 1 for row in rows)
    assert float(rows[0]["test/dice"]) >= float(rows[1]["test/dice"])  # best first
    assert (tmp_path / "summary" / "summary.png").stat().st_size > 10_000
    assert "test/dice" in (tmp_path / "summary" / "summary.md").read_text()
    for row in rows:  # each run: an offline W&B run, and the parameter reached the model
        assert list((tmp_path / "runs" / "wandb").glob(f"offline-run-*-{row['run']}"))
        config = yaml.safe_load((tmp_path / "runs" / "lightning-reg" / row["run"] / "config.yaml").read_text())
        assert config["model"]["eval_solver"]["transform"] == row["model.eval_solver.transform"]
    again = lightning_reg(["sweep", "tiny.yaml", "--out", "summary"], tmp_path, LIGHTNING_REG_RUN=str(trained_run))
    assert again.returncode == 2 and "--overwrite" in again.stderr


BAD = {
    "method: grdi": (
        "'grdi' is not one of",
        "method: grdi\nmetric: {name: val/dice}\nparameters:\n"
        "  model.lr: {values: [0.1]}\ncommand: [lightning-reg, fit, '${args}']\n",
    ),
    "valus": (
        "invalid hyperparameter configuration: model.lr",
        "method: grid\nmetric: {name: val/dice}\n"
        "parameters:\n  model.lr: {valus: [0.1]}\ncommand: [lightning-reg, fit, '${args}']\n",
    ),
    "no args": (
        "command must be a list that contains ${args}",
        "method: grid\nmetric: {name: val/dice}\n"
        "parameters:\n  model.lr: {values: [0.1]}\ncommand: [lightning-reg, fit]\n",
    ),
    "no metric": (
        "metric.name is missing",
        "method: grid\nparameters:\n  model.lr: {values: [0.1]}\ncommand: [lightning-reg, fit, '${args}']\n",
    ),
    "env": (
        "needs the environment variable(s) NO_SUCH_VARIABLE",
        "method: grid\nmetric: {name: val/dice}\n"
        "parameters:\n  model.lr: {values: [0.1]}\ncommand: [lightning-reg, fit, '${envvar:NO_SUCH_VARIABLE}', "
        "'${args}']\n",
    ),
    "count": (
        "a random sweep does not end by itself: give --count N",
        "method: random\nmetric: {name: val/dice}\n"
        "parameters:\n  model.lr: {values: [0.1]}\ncommand: [lightning-reg, fit, '${args}']\n",
    ),
    "yaml": ("is not valid YAML", "method: [grid\n"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_invalid_sweep_files_get_one_line_naming_the_problem(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message, text = BAD[case]
    (tmp_path / "bad.yaml").write_text(text)
    assert main(["sweep", "bad.yaml"]) == 2
    error = capsys.readouterr().err
    assert message in error and len(error.strip().splitlines()) == 1, error
    assert not (tmp_path / "runs").exists()


def test_a_parameter_that_is_not_an_option_stops_the_sweep_at_the_first_run(tmp_path):
    (tmp_path / "bad.yaml").write_text(
        "method: grid\nmetric: {name: val/dice}\nparameters:\n"
        "  model.no_such_option: {values: [1, 2]}\n"
        "command: [lightning-reg, validate, '${args}']\n"
    )
    done = lightning_reg(["sweep", "bad.yaml"], tmp_path)
    assert done.returncode == 2 and "the first run was refused" in done.stderr and "no_such_option" in done.stderr
    assert "Traceback" not in done.stderr
