"""Results of several processes (DDP) brought together."""
from __future__ import annotations

import lightning as L
import torch.distributed as dist


def gather_rows(trainer: L.Trainer, rows: list[dict]) -> list[dict]:
    """Every process's per-pair rows, in the order of the pairs; call it on all processes.

    Process ``r`` of ``w`` evaluates pairs ``r, r + w, r + 2w, ...`` (``data/sampling.py``), so taking
    one row from each process in turn restores the order. Lightning's strategies gather tensors
    only; rows hold strings, hence torch's object gathering.
    """
    if trainer.world_size == 1 or not (dist.is_available() and dist.is_initialized()):
        return list(rows)
    gathered: list[list[dict] | None] = [None] * trainer.world_size
    dist.all_gather_object(gathered, list(rows))
    longest = max(len(part) for part in gathered)
    return [part[index] for index in range(longest) for part in gathered if index < len(part)]
