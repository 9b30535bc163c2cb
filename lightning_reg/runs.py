"""Where a run writes its files, and whether W&B can go online."""
from __future__ import annotations

import netrc
import os
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import WandbLogger


def wandb_logged_in() -> bool:
    """True when W&B has an API key (``WANDB_API_KEY`` or the netrc entry ``wandb login`` writes) and
    ``WANDB_MODE`` is not ``offline``; then runs go online, else they are logged offline."""
    if os.environ.get("WANDB_MODE") in ("offline", "disabled"):
        return False
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        host = netrc.netrc(os.environ.get("NETRC")).authenticators("api.wandb.ai")
    except (OSError, netrc.NetrcParseError):
        return False
    return bool(host and host[2])


def run_directory(trainer: L.Trainer) -> Path:
    """The folder of this run: next to its checkpoints (``<save_dir>/<project>/<run id>`` for W&B)."""
    logger = trainer.logger
    if isinstance(logger, WandbLogger):
        return Path(logger.save_dir or trainer.default_root_dir) / str(logger.name) / str(logger.version)
    if logger is not None and trainer.log_dir:
        return Path(trainer.log_dir)
    return Path(trainer.default_root_dir)
