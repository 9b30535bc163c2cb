"""The energy terms a batch brings to the solver besides its images: label prompts and cost-function masks."""

from __future__ import annotations

from ..solver import Masks, Prompt, label_prompt
from .solver_settings import SolverSettings


def batch_prompts(batch: dict, settings: SolverSettings) -> list[Prompt]:
    """The label prompt of ``settings`` for ``batch`` (empty without ``prompt_labels``)."""
    if not settings.prompt_labels:
        return []
    if "fixed_seg" not in batch or "moving_seg" not in batch:
        raise ValueError("prompt_labels need label maps of both images: the batches have no fixed_seg/moving_seg")
    return [label_prompt(batch["fixed_seg"], batch["moving_seg"], list(settings.prompt_labels), settings.prompt_weight)]


def batch_masks(batch: dict) -> Masks | None:
    """The cost-function masks of ``batch`` (its optional ``fixed_mask``/``moving_mask``
    ``[B, 1, *S]``, nonzero inside), or None."""
    fixed, moving = batch.get("fixed_mask"), batch.get("moving_mask")
    if fixed is None and moving is None:
        return None
    return Masks(None if fixed is None else (fixed != 0).float(), None if moving is None else (moving != 0).float())
