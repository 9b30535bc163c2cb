"""A small model trained on synthetic pairs in a minute, for notebooks and examples (no files, no
network); a real model comes from ``lightning-reg fit`` and ``RegistrationModule.load_from_checkpoint``."""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import cast

import lightning as L

from ..data import SyntheticDataModule
from ..nn import UNet
from ..solver import SolverOptions
from ..solver.options import SimilarityName
from .module import RegistrationModule


def small_model(
    shape: tuple[int, ...] = (64, 64),
    steps: int = 150,
    seed: int = 0,
    similarity: str = "lncc",
    lr: float = 1e-3,
    test_pairs: int = 8,
) -> tuple[RegistrationModule, SyntheticDataModule]:
    """A UNet-feature model trained for ``steps`` pairs (batch 1) on synthetic 2D or 3D pairs of
    ``shape`` (about 0.3 s per step at 64x64 on two CPU cores), and its data module."""
    L.seed_everything(seed)
    data = SyntheticDataModule(shape=shape, train_pairs=max(steps, 1), val_pairs=1, test_pairs=test_pairs)
    model = RegistrationModule(
        network=UNet(dims=len(shape)), train_solver=SolverOptions(similarity=cast(SimilarityName, similarity)), lr=lr
    )
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level
    lightning_log.setLevel(logging.WARNING)  # no device and tip banners in a notebook
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*treespec.*")  # Lightning's own, about torch
            trainer = L.Trainer(
                max_steps=steps,
                max_epochs=1,
                limit_val_batches=0,
                logger=False,
                enable_checkpointing=False,
                enable_progress_bar=False,
                enable_model_summary=False,
                gradient_clip_val=1.0,
                accelerator="cpu",
                devices=1,
            )
            trainer.fit(model, data)
    finally:
        lightning_log.setLevel(level)
    return model.eval(), data


def load_or_train(checkpoint: str | Path | None = None, **settings) -> tuple[RegistrationModule, SyntheticDataModule]:
    """The model of ``checkpoint`` (a ``lightning-reg fit`` checkpoint; synthetic test pairs of the
    network's dimensionality and ``settings['shape']``), or :func:`small_model` with ``settings``."""
    if checkpoint is None:
        return small_model(**settings)
    model = RegistrationModule.load_from_checkpoint(str(checkpoint), map_location="cpu").eval()
    shape = settings.get("shape", (64,) * model.network.dims)
    return model, SyntheticDataModule(shape=shape, test_pairs=settings.get("test_pairs", 8))
