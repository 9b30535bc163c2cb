"""Running the solver where autograd is switched off around it.

The solver differentiates its energy even in evaluation. ``torch.no_grad`` is handled by the
solver's own ``enable_grad``; ``torch.inference_mode`` (Lightning's default for validation and
test) is not, because inference tensors cannot be saved for backward. :func:`leave_inference_mode`
gives normal copies of the inputs so the solver can run in ``inference_mode(False)``;
:func:`outside_inference_mode` wraps a function so that it does this itself.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import torch


def leave_inference_mode(value: Any) -> Any:
    """Normal (non-inference) copies of the tensors in ``value`` (tensors, lists, tuples, dicts,
    dataclasses); everything else unchanged. Call inside ``torch.inference_mode(False)``."""
    if isinstance(value, torch.Tensor):
        return value.clone() if value.is_inference() else value
    if isinstance(value, (list, tuple)):
        return type(value)(leave_inference_mode(item) for item in value)
    if isinstance(value, dict):
        return {key: leave_inference_mode(item) for key, item in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: leave_inference_mode(getattr(value, f.name)) for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    return value


def outside_inference_mode(function: Callable) -> Callable:
    """Run ``function`` with autograd available: inside ``torch.inference_mode`` it is called in
    ``inference_mode(False)`` on normal copies of its tensor arguments."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        if not torch.is_inference_mode_enabled():
            return function(*args, **kwargs)
        with torch.inference_mode(False):
            return function(*leave_inference_mode(args), **leave_inference_mode(kwargs))

    return wrapper
