"""Helpers the tests import (conftest.py files are for fixtures only)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import torch

#: options that make ``lightning-reg fit``/``test`` tiny: 2D 32x32, a few pairs, one epoch
TINY_2D = ["--data.shape", "[32,32]", "--data.train_pairs", "2", "--data.val_pairs", "1", "--data.test_pairs", "3",
        "--trainer.max_epochs", "1", "--trainer.enable_progress_bar", "false", "--model.train_solver.iterations",
        "[5,5,5]"]


def mean_dice(fixed_seg: torch.Tensor, warped_seg: torch.Tensor) -> float:
    from lightning_reg.metrics import dice_per_label

    scores = dice_per_label(fixed_seg, warped_seg)
    return sum(scores.values()) / len(scores)


def lightning_reg(arguments, folder: Path, **environment: str) -> subprocess.CompletedProcess:
    """``lightning-reg ARGUMENTS`` in ``folder`` as a user runs it (W&B offline), output captured."""
    environment = dict(os.environ, WANDB_MODE="offline", WANDB_SILENT="true", **environment)
    return subprocess.run([sys.executable, "-m", "lightning_reg.cli", *map(str, arguments)], cwd=folder,
                          env=environment, capture_output=True, text=True, timeout=600, check=False)

