"""``lightning-reg fit | validate | test | predict``: LightningCLI on the registration module and data."""
from __future__ import annotations

from typing import Sequence

from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger

from .callbacks import RegistrationPanel
from .data import SyntheticDataModule
from .module import RegistrationModule
from .runs import run_directory, wandb_logged_in

SUBCOMMANDS = ("fit", "validate", "test", "predict")


class SaveRunConfig(SaveConfigCallback):
    """Save the resolved config into the run's own folder (not a folder shared by all runs) and
    give it to W&B as the run's config."""

    def save_config(self, trainer, pl_module, stage: str) -> None:
        directory = run_directory(trainer)
        directory.mkdir(parents=True, exist_ok=True)
        self.parser.save(self.config, directory / self.config_filename, skip_none=False, overwrite=True,
                         multifile=self.multifile)
        if isinstance(trainer.logger, WandbLogger):
            trainer.logger.experiment.config.update({"cli": self.parser.dump(self.config, skip_none=False)},
                                                    allow_val_change=True)


def trainer_defaults() -> dict:
    """CPU, W&B (offline unless logged in) under ``runs/``, best and last checkpoints by val Dice."""
    logger = {"class_path": "lightning.pytorch.loggers.WandbLogger",
              "init_args": {"project": "lightning-reg", "save_dir": "runs", "offline": not wandb_logged_in()}}
    checkpoint = ModelCheckpoint(monitor="val/dice", mode="max", save_last=True,
                                 filename="best-{epoch}-{step}", auto_insert_metric_name=False)
    return {"accelerator": "cpu", "devices": 1, "max_epochs": 2, "log_every_n_steps": 10,
            "gradient_clip_val": 1.0, "default_root_dir": "runs", "logger": logger,
            "callbacks": [checkpoint, RegistrationPanel()]}


def run_lightning(argv: Sequence[str]) -> None:
    """Run one LightningCLI subcommand; ``argv`` starts with it (``fit``, ``test``, ...)."""
    LightningCLI(RegistrationModule, SyntheticDataModule, args=list(argv), trainer_defaults=trainer_defaults(),
                 save_config_callback=SaveRunConfig, save_config_kwargs={"save_to_log_dir": False},
                 parser_kwargs={"prog": "lightning-reg"}, seed_everything_default=0)
