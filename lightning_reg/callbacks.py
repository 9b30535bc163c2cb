"""Lightning callbacks: the validation picture of one pair, saved as PNG and logged to W&B; the
final metrics of a run as JSON; a checkpoint when training is interrupted (Ctrl-C)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities import rank_zero_info

from .output_files import write_text
from .runs import run_directory
from .viz import registration_panel, save_figure


class RegistrationPanel(L.Callback):
    """After each validation, draw the first validation pair: fixed, moving, warped, checkerboard,
    deformation grid and the features of every scale (PCA as RGB). Saved under
    ``<run>/panels/`` and logged to W&B as ``val/panel``."""

    def __init__(self) -> None:
        self.batch = None

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0 and dataloader_idx == 0:
            self.batch = {key: value[:1] for key, value in batch.items()}

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module) -> None:
        if self.batch is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        batch, self.batch = self.batch, None
        with torch.no_grad():
            fixed_features, moving_features = pl_module.features(batch["fixed"], batch["moving"])
            result = pl_module(batch)
            warped = result.warp(batch["moving"])
        pyramids = [[level[0] for level in fixed_features], [level[0] for level in moving_features]]
        title = f"{_pair_id(batch)}  epoch {trainer.current_epoch}  step {trainer.global_step}"
        figure = registration_panel(batch["fixed"][0], batch["moving"][0], warped[0],
                                    result.displacement_voxels()[0], pyramids, title=title)
        path = save_figure(figure, run_directory(trainer) / "panels" /
                           f"val_epoch{trainer.current_epoch:03d}_step{trainer.global_step:06d}.png")
        if isinstance(trainer.logger, WandbLogger):
            trainer.logger.log_image(key="val/panel", images=[str(path)], step=trainer.global_step)


#: environment variable naming an extra file for a run's final metrics (set by ``lightning-reg sweep``)
METRICS_FILE_VARIABLE = "LIGHTNING_REG_METRICS"


class MetricsFile(L.Callback):
    """At the end of fit, validate and test, write the last logged value of every metric
    (``trainer.callback_metrics``, reduced over processes) to ``<run>/metrics.json``, and to the
    file named by ``$LIGHTNING_REG_METRICS`` when set: that is where ``lightning-reg sweep`` reads
    each run's result, as W&B's summary would be read online."""

    def teardown(self, trainer: L.Trainer, pl_module, stage: str) -> None:
        if stage == "predict" or not trainer.is_global_zero or not trainer.callback_metrics:
            return
        values = {key: float(value) for key, value in trainer.callback_metrics.items()}
        text = json.dumps({"stage": stage, **values}, indent=2)
        paths = [run_directory(trainer) / "metrics.json"]
        if os.environ.get(METRICS_FILE_VARIABLE):
            paths.append(Path(os.environ[METRICS_FILE_VARIABLE]))
        for path in paths:
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text(path, text)


class InterruptCheckpoint(L.Callback):
    """On Ctrl-C during ``fit``, save the state of that moment as ``interrupted.ckpt`` beside the
    other checkpoints (``last.ckpt`` stays the end of the last complete epoch, from which
    ``--ckpt_path last`` resumes exactly). Lightning then closes the loggers and exits."""

    FILENAME = "interrupted.ckpt"

    def on_exception(self, trainer: L.Trainer, pl_module, exception: BaseException) -> None:
        if not isinstance(exception, KeyboardInterrupt) or trainer.state.fn != "fit" or trainer.global_step == 0:
            return
        folders = [callback.dirpath for callback in trainer.checkpoint_callbacks if getattr(callback, "dirpath", None)]
        path = Path(folders[0] if folders else run_directory(trainer) / "checkpoints") / self.FILENAME
        trainer.save_checkpoint(path)
        rank_zero_info(f"interrupted: the state at step {trainer.global_step} is saved in {path}")


def _pair_id(batch: dict) -> str:
    ids = batch.get("id")
    return str(ids[0]) if ids is not None else "pair 0"
