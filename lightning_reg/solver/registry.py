"""Building components by name, with errors that list the valid names."""

from __future__ import annotations

from typing import Any, Mapping


def build_named(registry: Mapping[str, Any], kind: str, name: str, options: Mapping[str, Any]) -> Any:
    """``registry[name](**options)``; an unknown name or option raises a ValueError that says so."""
    if name not in registry:
        raise ValueError(f"unknown {kind} {name!r}; choose one of {', '.join(registry)}")
    try:
        return registry[name](**options)
    except TypeError as error:
        raise ValueError(f"bad option for {kind} {name!r}: {error}") from None
