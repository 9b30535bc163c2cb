"""Where a run writes its files, and whether W&B can go online."""

from __future__ import annotations

import netrc
import os
import socket
import urllib.parse
from pathlib import Path
from weakref import WeakKeyDictionary

import lightning as L
from lightning.pytorch.loggers import WandbLogger

from ..errors import warn

#: seconds to wait for W&B's server before logging offline
WANDB_TIMEOUT = 3.0


def wandb_reachable(timeout: float = WANDB_TIMEOUT) -> bool:
    """Whether W&B's server (``WANDB_BASE_URL``, else api.wandb.ai) answers a connection in ``timeout`` s."""
    address = urllib.parse.urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai")
    port = address.port or (80 if address.scheme == "http" else 443)
    try:
        socket.create_connection((address.hostname or "api.wandb.ai", port), timeout=timeout).close()
    except (OSError, ValueError):
        return False
    return True


def wandb_logged_in() -> bool:
    """True when W&B has an API key (``WANDB_API_KEY`` or the netrc entry ``wandb login`` writes),
    ``WANDB_MODE`` is not ``offline`` and its server answers; then runs go online, else they are logged
    offline (with a warning when a key is there but the server is not: wandb itself would wait about
    two minutes and then fail)."""
    if os.environ.get("WANDB_MODE") in ("offline", "disabled"):
        return False
    key = bool(os.environ.get("WANDB_API_KEY"))
    if not key:
        try:
            host = netrc.netrc(os.environ.get("NETRC")).authenticators("api.wandb.ai")
        except (OSError, netrc.NetrcParseError):
            return False
        key = bool(host and host[2])
    if key and not wandb_reachable():
        warn(
            "a W&B API key is set but W&B's server does not answer (no network?): logging offline; "
            "upload the run later with wandb sync"
        )
        return False
    return key


#: the run folder agreed on by every process, per trainer (see :func:`share_run_directory`)
_SHARED: WeakKeyDictionary = WeakKeyDictionary()


def run_directory(trainer: L.Trainer) -> Path:
    """The folder of this run: next to its checkpoints (``<save_dir>/<project>/<run id>`` for W&B).

    No collective call, so rank-0-only code may use it; on the other processes it is right once
    :func:`share_run_directory` has run (loggers name a run on process 0 only)."""
    if trainer in _SHARED:
        return _SHARED[trainer]
    logger = trainer.logger
    if isinstance(logger, WandbLogger):
        return Path(logger.save_dir or trainer.default_root_dir) / str(logger.name) / str(logger.version)
    folder = logger is not None and (getattr(logger, "log_dir", None) or logger.save_dir)
    return Path(folder or trainer.default_root_dir)


def share_run_directory(trainer: L.Trainer) -> Path:
    """Give every process process 0's run folder; call it on all processes (it is a broadcast)."""
    if trainer not in _SHARED:
        _SHARED[trainer] = Path(trainer.strategy.broadcast(str(run_directory(trainer)), src=0))
    return _SHARED[trainer]
