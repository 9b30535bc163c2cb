"""What a model logs and writes of its steps: the training terms, the per-pair means at validation and
test (summed over DDP processes by torchmetrics) and the per-pair test table."""

from __future__ import annotations

from typing import Any, cast

import lightning as L
import torch
from torchmetrics import MeanMetric

from ..evaluation.rows import SUMMARY_KEYS, gather_rows, write_rows
from .run_folder import run_directory


def log_training_terms(module: L.LightningModule, results: list, terms: dict, batch_size: int) -> None:
    """Log the training ``terms`` (name: value, or None when not computed) and how close the solver came
    to a minimum (what the implicit gradient assumes) at each level of ``results``."""
    for level, result in enumerate(results):
        module.log(f"train/stationarity_level{level}", result.stationarity.mean().float(), batch_size=batch_size)
    if results:
        module.log("train/stationarity", results[-1].stationarity.mean().float(), batch_size=batch_size)
    for name, value in terms.items():
        if value is not None:
            module.log(f"train/{name}", value, batch_size=batch_size, prog_bar=name == "loss")


class TestTable(L.Callback):
    """``test_metrics.csv`` in the run folder: the rows of every test pair (the module's ``test_rows``),
    gathered from every DDP process."""

    def on_test_epoch_start(self, trainer: L.Trainer, pl_module: Any) -> None:
        pl_module.test_rows = []

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: Any) -> None:
        rows = gather_rows(trainer, pl_module.test_rows)
        if trainer.is_global_zero and rows:
            write_rows(run_directory(trainer) / "test_metrics.csv", rows)


class SummaryMeans(torch.nn.Module):
    """One mean of each summary key (``evaluation.rows.SUMMARY_KEYS``) per stage (``val``, ``test``).
    NaN (e.g. HD95 of a label missing from a pair) counts as no value, as in ``evaluation.mean_rows``."""

    def __init__(self, stages: tuple[str, ...] = ("val", "test")) -> None:
        super().__init__()
        self.means = torch.nn.ModuleDict(
            {f"{stage}_{key}": MeanMetric(nan_strategy="ignore") for stage in stages for key in SUMMARY_KEYS}
        )

    def log(self, module: L.LightningModule, stage: str, rows: list[dict]) -> None:
        """Log the per-pair means of ``rows`` as ``<stage>/<key>`` through ``module``; torchmetrics sums
        values and counts over processes at the end of the epoch. (Lightning's own ``sync_dist`` mean is
        wrong when processes evaluate different numbers of pairs: it averages the pair counts over
        processes in integers, Lightning-AI/pytorch-lightning#21859.)"""
        for key in SUMMARY_KEYS:
            if rows and key in rows[0]:  # the same keys on every process: each logs, each takes part in the sum
                mean = cast(MeanMetric, self.means[f"{stage}_{key}"])
                mean.update(torch.tensor([row[key] for row in rows], dtype=torch.float64, device=module.device))
                module.log(f"{stage}/{key}", mean, batch_size=len(rows), prog_bar=key == "dice")
