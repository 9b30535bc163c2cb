"""0.3's solver settings keep working until 0.6: ``SolverSettings``/``EvalSolverSettings`` calls and the
keys of 0.3 configs and checkpoints, read as 0.4's ``SolverOptions`` with a warning naming the new key."""

from pathlib import Path

import pytest
import torch
import yaml

from lightning_reg.nn import UNet
from lightning_reg.solver import SolverOptions
from lightning_reg.training.module import RegistrationModule
from lightning_reg.training.solver_settings import EvalSolverSettings, SolverSettings, upgraded_hyperparameters

OLD_CONFIG = Path(__file__).resolve().parents[1] / "fixtures" / "config_0.1.0.yaml"


def test_a_0_1_config_s_solver_keys_warn_and_mean_what_they_meant():
    model = yaml.safe_load(OLD_CONFIG.read_text())["model"]
    with pytest.warns(FutureWarning, match=r"train_solver.learning_rate: write transform_options.*until 0.6"):
        old = RegistrationModule(network=UNet(dims=2), **{key: model[key] for key in ("train_solver", "eval_solver")})
    new = RegistrationModule(
        network=UNet(dims=2),
        train_solver=SolverOptions(
            transform="freeform",
            similarity="mse",
            iterations=(5, 5, 5),
            transform_options={"learning_rate": 0.25, "smooth_grad_sigma": 1.0, "smooth_warp_sigma": 0.5},
        ),
        eval_solver={"transform": "affine+svf"},
    )
    assert old.train_solver == new.train_solver
    assert old.eval_solver == new.eval_solver and old.eval_solver.plan == "affine+svf"
    assert old.eval_solver.similarity == "mse"  # 0.3's null: as in training


def test_0_3_python_calls_warn_and_build_the_same_options():
    with (
        pytest.warns(DeprecationWarning, match="SolverSettings is SolverOptions since 0.4"),
        pytest.warns(FutureWarning),
    ):
        settings = SolverSettings(transform="svf", learning_rate=0.5, backward="ift", backward_options={"damping": 0.1})
    assert settings == SolverOptions(
        transform="svf", transform_options={"learning_rate": 0.5}, backward={"mode": "ift", "damping": 0.1}
    )
    with pytest.warns(DeprecationWarning, match="EvalSolverSettings is a dict of changes"):
        changes = EvalSolverSettings(transform="greedy", iterations=None)
    assert changes == {"transform": "greedy"}


def test_a_linear_transform_drops_0_3_s_deformable_keys_as_0_3_did():
    with pytest.warns(DeprecationWarning), pytest.warns(FutureWarning):
        settings = SolverSettings(transform="affine", learning_rate=0.5, regularizer="diffusion", regularizer_weight=1)
    assert settings.transform_options == {} and settings.regularizer is None and settings.regularizer_weight == 0


def test_a_0_3_checkpoint_loads_quietly_with_its_settings(tmp_path, recwarn):
    model = RegistrationModule(network=UNet(dims=2), eval_solver={"transform": "svf", "iterations": [5]})
    stored = {
        "state_dict": model.state_dict(),
        "hyper_parameters": {
            "network": {"class_path": "lightning_reg.nn.UNet", "init_args": {"dims": 2}},
            "train_solver": {"transform": "freeform", "backward": "jfb", "backward_options": {}, "learning_rate": None},
            "eval_solver": {"transform": "svf", "iterations": [5], "learning_rate": None, "similarity": None},
        },
        "pytorch-lightning_version": "2.6.0",
    }
    torch.save(stored, tmp_path / "old.ckpt")
    loaded = RegistrationModule.load_from_checkpoint(tmp_path / "old.ckpt", network=UNet(dims=2))
    assert not [warning for warning in recwarn if "0.3 spelling" in str(warning.message)]
    assert loaded.eval_solver.transform == "svf" and loaded.eval_solver.iterations == (5,)
    assert upgraded_hyperparameters(stored["hyper_parameters"])["eval_solver"] == {
        "transform": "svf",
        "iterations": [5],
    }


def test_an_unknown_key_names_the_known_ones():
    with pytest.raises(ValueError, match=r"train_solver: unknown solver option\(s\) transfrom; known: .*transform"):
        RegistrationModule(network=UNet(dims=2), train_solver={"transfrom": "svf"})
