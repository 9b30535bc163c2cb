"""The energy terms a batch brings to the solver besides its images: label prompts and cost-function masks."""

from __future__ import annotations

from ..solver import Masks, Prompt, SolverOptions


def batch_prompts(batch: dict, options: SolverOptions) -> list[Prompt]:
    """The label prompt of ``options.prompt_labels`` for ``batch`` (empty without them)."""
    if options.prompt_labels and ("fixed_seg" not in batch or "moving_seg" not in batch):
        raise ValueError("prompt_labels need label maps of both images: the batches have no fixed_seg/moving_seg")
    return options.label_prompts(batch.get("fixed_seg"), batch.get("moving_seg"))


def batch_masks(batch: dict) -> Masks | None:
    """The cost-function masks of ``batch`` (its optional ``fixed_mask``/``moving_mask``
    ``[B, 1, *S]``, nonzero inside), or None."""
    fixed, moving = batch.get("fixed_mask"), batch.get("moving_mask")
    if fixed is None and moving is None:
        return None
    return Masks(None if fixed is None else (fixed != 0).float(), None if moving is None else (moving != 0).float())
