"""An EdgeX event as the row rules see: its readings by resource name, typed, and the event's fields."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from edgeplane_common.edgex.events import EventRecord
from rules_engine.application.sql.compiler import META


def _bool(text: str) -> bool | None:
    low = text.lower()
    if low in ("true", "1", "t"):
        return True
    if low in ("false", "0", "f"):
        return False
    return None


def _json(text: str) -> Any:
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return None


_INTS = ("Int8", "Int16", "Int32", "Int64", "Uint8", "Uint16", "Uint32", "Uint64")
_CONVERT: dict[str, Callable[[str], Any]] = {
    **dict.fromkeys(_INTS, int),
    "Float32": float,
    "Float64": float,
    "Bool": _bool,
    "String": str,
}


def reading_value(reading: dict[str, Any]) -> Any:
    """A reading's value as a number, bool, string, list or object (None for binary or no value)."""
    value_type = reading.get("valueType", "")
    if value_type in ("Object", "ObjectArray"):
        return reading.get("objectValue")
    value = reading.get("value")
    if value is None:
        return None
    convert = _CONVERT.get(value_type)
    if convert is not None:
        try:
            return convert(value)
        except ValueError:
            return None
    if value_type.endswith("Array"):
        return _json(value)
    return None


def event_row(record: EventRecord) -> dict[str, Any]:
    doc = record.doc
    row: dict[str, Any] = {r["resourceName"]: reading_value(r) for r in doc["readings"]}
    row["deviceName"] = record.device
    row["profileName"] = record.profile
    row["sourceName"] = record.source
    row["origin"] = record.origin
    row["id"] = record.id
    row[META] = doc
    return row
