"""A config that says it is the default made explicit is: every value in ``configs/synthetic2d.yaml``
equals the code's default (the module's and networks' signatures, ``ADDED_SOLVER``, the data
module's signature, the command's trainer defaults)."""

import inspect
from dataclasses import asdict
from pathlib import Path

import yaml

from lightning_reg.cli.lightning import trainer_defaults
from lightning_reg.data.synthetic_datamodule import SyntheticDataModule
from lightning_reg.nn import AddedFeatures
from lightning_reg.solver import SolverOptions
from lightning_reg.training.module import ADDED_SOLVER, DEFAULT_NETWORK_ARGS, RegistrationModule

ROOT = Path(__file__).resolve().parents[1]


def _defaults(function) -> dict:
    return {name: parameter.default for name, parameter in inspect.signature(function).parameters.items()}


def _same(value, default) -> bool:
    return list(value) == list(default) if isinstance(default, (list, tuple)) else value == default


def test_the_synthetic_config_is_the_default_of_fit_made_explicit():
    config = yaml.safe_load((ROOT / "configs" / "synthetic2d.yaml").read_text())
    model = dict(config["model"])
    network = model.pop("network")
    assert network["class_path"] == f"lightning_reg.nn.{AddedFeatures.__name__}"
    checks = [(network["init_args"], {**_defaults(AddedFeatures), **DEFAULT_NETWORK_ARGS})]
    assert SolverOptions(**model.pop("train_solver")) == ADDED_SOLVER
    checks += [(model, _defaults(RegistrationModule)), (config["data"], _defaults(SyntheticDataModule))]
    checks += [(config["trainer"], trainer_defaults())]
    for given, defaults in checks:
        wrong = {key: (value, defaults.get(key, "no such option")) for key, value in given.items()}
        wrong = {key: pair for key, pair in wrong.items() if not _same(*pair)}
        assert not wrong, f"configs/synthetic2d.yaml differs from the code's defaults: {wrong}"


def test_print_config_shows_the_training_solver_it_will_use(tmp_path):
    """``fit --print_config`` shows the solver's real defaults, not ``null``."""
    from helpers import lightning_reg

    done = lightning_reg(["fit", "--print_config"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    shown = yaml.safe_load(done.stdout)["model"]["train_solver"]
    assert shown == {
        key: list(value) if isinstance(value, tuple) else value for key, value in asdict(ADDED_SOLVER).items()
    }
