"""Divergence: a training step whose features, loss or gradients are not finite changes no weight,
and a run whose steps keep failing stops with one line. A Callback (the module only says why its
step must be skipped, ``RegistrationModule.skip_reason``); the module adds it itself
(``configure_callbacks``), so every Trainer has it."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import lightning as L
import torch

from ..errors import InputError

#: training stops when this many steps in a row had to be skipped
DIVERGENCE_PATIENCE = 2


class SkipNonFiniteSteps(L.Callback):
    """Skip the update when this step's features, loss or gradients are not finite on any process
    (the weights stay as they were; never NaN weights); stop training with one line when
    ``patience`` steps in a row are skipped."""

    def __init__(self, patience: int = DIVERGENCE_PATIENCE) -> None:
        self.patience = patience
        self.skipped_steps: list[int] = []  # the steps skipped in a row, for the message

    def on_before_optimizer_step(self, trainer: L.Trainer, pl_module: Any, optimizer) -> None:
        gradients = [parameter.grad for parameter in pl_module.parameters() if parameter.grad is not None]
        reason = getattr(pl_module, "skip_reason", None)
        if reason is None and not all(bool(torch.isfinite(gradient).all()) for gradient in gradients):
            reason = "the gradients are not finite"
        pl_module.skip_reason = None
        skip = trainer.strategy.reduce_boolean_decision(reason is not None, all=False)
        if not skip:
            self.skipped_steps = []
            return
        for parameter in pl_module.parameters():
            parameter.grad = None
        self.skipped_steps.append(trainer.global_step)
        pl_module.log("train/skipped_steps", float(len(self.skipped_steps)), batch_size=1)
        cause = reason or "another process's step was not finite"
        if len(self.skipped_steps) < self.patience:
            warnings.warn(f"step {trainer.global_step} skipped: {cause}; the weights were not changed", stacklevel=2)
            return
        lr = pl_module.hparams.get("lr")
        advice = f" The learning rate is likely too high (--model.lr {lr:g}; try {lr / 10:g})." if lr else ""
        where = _last_good_checkpoint(trainer)
        raise InputError(f"training diverged: {cause} at steps {self.skipped_steps} in a row.{advice} {where}")


def _last_good_checkpoint(trainer: L.Trainer) -> str:
    """Where the last checkpoint saved before a failure is, for the failure's message."""
    found = [
        getattr(callback, "last_model_path", None) or getattr(callback, "best_model_path", None)
        for callback in trainer.checkpoint_callbacks
    ]
    paths = [path for path in found if path]
    saved = [Path(path) for path in paths if Path(path).is_file()]
    if not saved:
        return "No checkpoint was saved before it."
    newest = max(saved, key=lambda path: path.stat().st_mtime)
    return f"The last checkpoint before it, {newest}, holds finite weights (resume or test from it)."


def with_every_weight(module: torch.nn.Module, loss: torch.Tensor | float) -> torch.Tensor:
    """``loss`` plus zero times every trainable weight of ``module``: the same value and gradients, but
    every weight takes part in every step, so DDP exchanges gradients without ``find_unused_parameters``
    when some weights are idle (levels left out by ``progressive_epochs`` or the solver's scales, the
    gate while pre-training, a step skipped here)."""
    zero = sum((parameter * 0).sum() for parameter in module.parameters() if parameter.requires_grad)
    return torch.as_tensor(loss) + zero
