"""The optimizer of a model's training: AdamW, its learning rate decayed polynomially to 0 over the run."""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch


def adamw_with_polynomial_decay(module: Any):
    """``configure_optimizers``' answer for ``module`` (hyperparameters ``lr``, ``weight_decay``,
    ``poly_power``): AdamW over its trainable weights, stepped down every step to 0 at the trainer's
    last; no decay (and a warning) for a run without an end. ValueError for a network without weights."""
    parameters = [p for p in module.parameters() if p.requires_grad]
    if not parameters:
        raise ValueError(
            f"{type(module.network).__name__} has no weights to train; evaluate it with "
            f"lightning-reg validate/test instead of fit"
        )
    hparams, trainer = module.hparams, module.trainer
    optimizer = torch.optim.AdamW(parameters, lr=hparams.lr, weight_decay=hparams.weight_decay)
    total = trainer.estimated_stepping_batches
    if not math.isfinite(total):  # max_epochs -1 and no max_steps: until stopped, so no end to decay to
        warnings.warn(
            f"training has no end (--trainer.max_epochs {trainer.max_epochs}, no max_steps), so "
            f"the learning rate stays at --model.lr {hparams.lr:g}; set --trainer.max_steps or "
            f"max_epochs for its polynomial decay",
            stacklevel=3,
        )
        return optimizer
    schedule = torch.optim.lr_scheduler.PolynomialLR(
        optimizer, total_iters=max(int(total), 1), power=hparams.poly_power
    )
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}
