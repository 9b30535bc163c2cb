"""The per-pair means a model logs at validation and test, summed over DDP processes by torchmetrics."""

from __future__ import annotations

import lightning as L
import torch
from torchmetrics import MeanMetric

from ..evaluation.rows import SUMMARY_KEYS


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
                mean = self.means[f"{stage}_{key}"]
                mean.update(torch.tensor([row[key] for row in rows], dtype=torch.float64, device=module.device))
                module.log(f"{stage}/{key}", mean, batch_size=len(rows), prog_bar=key == "dice")
