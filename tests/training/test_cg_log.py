"""Training with the ``ift`` backward logs how far its conjugate gradient got, so a user sees an
inexact gradient in W&B instead of trusting it; ``jfb`` logs nothing of the kind."""

import lightning as L
import pytest
import torch

from lightning_reg.data import SyntheticDataModule
from lightning_reg.nn import UNet
from lightning_reg.solver import SolverOptions
from lightning_reg.solver.loop.implicit import take_cg_reports
from lightning_reg.training.callbacks import ConjugateGradientLog
from lightning_reg.training.module import RegistrationModule

QUIET = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)


def _train(backward: str) -> dict:
    L.seed_everything(0)
    data = SyntheticDataModule(shape=(16, 16), num_labels=3, train_pairs=4, val_pairs=1)
    settings = SolverOptions(
        transform="freeform",
        similarity="mse",
        optimizer="lbfgs",
        iterations=[30],
        scales=[1],
        regularizer_weight=0.1,
        backward=backward,
    )
    model = RegistrationModule(network=UNet(dims=2, out_channels=2, scales=[1], widths=[4, 4]), train_solver=settings)
    trainer = L.Trainer(max_steps=2, limit_val_batches=0, callbacks=[ConjugateGradientLog()], **QUIET)
    trainer.fit(model, data)
    return {key: float(value) for key, value in trainer.callback_metrics.items()}


def test_ift_training_logs_the_residual_and_iterations_conjugate_gradient_reached():
    logged = _train("ift")
    assert logged["train/cg_iterations"] >= 1
    # float32, linear sampling: the Hessian need not be positive definite, so CG may stop early; the
    # value is whatever it reached (the exact figures are checked on a known system below)
    assert 0.0 <= logged["train/cg_relative_residual"] < float("inf")
    assert take_cg_reports() == []  # the callback took them all


def test_jfb_training_logs_no_conjugate_gradient():
    logged = _train("jfb")
    assert not any(key.startswith("train/cg_") for key in logged)
    assert torch.isfinite(torch.tensor(logged["train/loss"]))


def test_conjugate_gradient_reports_the_residual_it_reached_capped_or_converged():
    from lightning_reg.solver.loop.implicit import conjugate_gradient

    take_cg_reports()
    matrix = torch.diag(torch.linspace(1.0, 100.0, 40, dtype=torch.float64))[None]
    rhs = [torch.ones(1, 40, dtype=torch.float64)]

    def product(vector):
        return [torch.einsum("bij,bj->bi", matrix, vector[0])]

    with pytest.warns(UserWarning, match="stopped at its cap"):
        conjugate_gradient(product, rhs, 0.0, 2, 1e-6)
    (solution,) = conjugate_gradient(product, rhs, 0.0, 100, 1e-8)
    capped, converged = take_cg_reports()
    assert (capped.iterations, capped.cap) == (2, 2) and capped.relative_residual > 1e-3
    true_residual = float((rhs[0] - product([solution])[0]).norm() / rhs[0].norm())
    assert converged.iterations <= 40 and converged.relative_residual <= 1e-8
    assert converged.relative_residual == pytest.approx(true_residual, rel=1e-3, abs=1e-12)
