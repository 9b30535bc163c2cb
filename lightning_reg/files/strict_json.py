"""JSON that strict readers accept: RFC 8259 has no ``NaN`` or ``Infinity`` (Python writes them,
JavaScript's ``JSON.parse``, ``jq`` and many others refuse the file). A number that is not finite
is written as ``null``, and the file says which it was and why under :data:`NOT_FINITE_KEY`."""

from __future__ import annotations

import json
import math
from typing import Any, Mapping

#: where a record lists its values written as null: ``{"a.b": "NaN: <why>"}``
NOT_FINITE_KEY = "null_values"
#: why a value is not finite, by the last part of its key
WHY = {
    "hd95": "no label is present in both label maps",
    "hd95_before": "no label is present in both label maps",
    "tre_mm": "no landmark was mapped",
}


def _spelling(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _finite(value: Any, key: str, found: dict[str, str]) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        last = key.rsplit(".", 1)[-1]
        found[key] = f"{_spelling(value)}: {WHY.get(last, 'not defined for these inputs')}"
        return None
    if isinstance(value, Mapping):
        return {name: _finite(item, f"{key}.{name}" if key else str(name), found) for name, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item, f"{key}[{index}]", found) for index, item in enumerate(value)]
    return value


def finite(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` with every NaN and infinity replaced by ``None``, listed under :data:`NOT_FINITE_KEY`."""
    found: dict[str, str] = {}
    cleaned = _finite(record, "", found)
    if found:
        cleaned[NOT_FINITE_KEY] = found
    return cleaned


def dumps(record: Mapping[str, Any], **options: Any) -> str:
    """``json.dumps`` of :func:`finite` ``(record)``: never ``NaN`` or ``Infinity``."""
    return json.dumps(finite(record), allow_nan=False, **options)
