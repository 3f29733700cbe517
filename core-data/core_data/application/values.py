"""How readings are presented: numeric values as JSON numbers (`numeric=true`) and aggregate results."""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Any

from core_data.application.ports import AggregateGroup
from edgeplane_common.edgex.values import INTEGER_TYPES, NUMERIC_TYPES, UNSIGNED_TYPES, parse_flag
from edgeplane_common.errors import ContractInvalid


class AggregateFunc(StrEnum):
    MIN = "MIN"
    MAX = "MAX"
    COUNT = "COUNT"
    SUM = "SUM"
    AVG = "AVG"

    @classmethod
    def parse(cls, text: str) -> AggregateFunc:
        try:
            return cls(text.strip().upper())
        except ValueError:
            raise ContractInvalid(
                f"aggregateFunc {text!r} is not one of {', '.join(f.value for f in cls)} (any casing)"
            ) from None


def query_flag(name: str, text: str | None) -> bool:
    """A true/false query parameter such as `numeric` (the kernel's `parse_flag`); absent or empty is false."""
    if text is None or text == "":
        return False
    found = parse_flag(text)
    if found is None:
        raise ContractInvalid(f"{name} must be true or false, got {text!r}")
    return found


def numeric(value_type: str, text: str) -> int | float | str:
    """A numeric reading's value as a number; the text unchanged if it does not parse."""
    try:
        if value_type in INTEGER_TYPES:
            return int(text)
        number = float(text)
    except ValueError:
        return text
    # JSON has no NaN or infinities: those stay strings.
    return number if math.isfinite(number) else text


def with_numeric_value(reading: dict[str, Any]) -> dict[str, Any]:
    vt = reading.get("valueType")
    value = reading.get("value")
    if vt in NUMERIC_TYPES and isinstance(value, str):
        return {**reading, "value": numeric(vt, value)}
    return reading


def event_with_numeric_values(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "readings": [with_numeric_value(r) for r in event.get("readings", ())]}


def _result_type(group: AggregateGroup, func: AggregateFunc) -> str:
    if func is AggregateFunc.COUNT:
        return "Uint64"
    if func is AggregateFunc.AVG or group.value_type not in INTEGER_TYPES:
        return "Float64"
    return "Uint64" if group.value_type in UNSIGNED_TYPES else "Int64"


def aggregate_reading(group: AggregateGroup, func: AggregateFunc) -> dict[str, Any]:
    """One group as EdgeX 4 answers it: the result as a number with its type (COUNT Uint64, AVG Float64,
    SUM/MIN/MAX Int64, Uint64 or Float64 after the readings' type); an empty value for non-numeric groups."""
    out: dict[str, Any] = {
        "deviceName": group.device,
        "resourceName": group.resource,
        "profileName": group.profile,
    }
    if not group.numeric:
        out["valueType"] = group.value_type
        out["value"] = ""
        return out
    value: int | float | str
    if func is AggregateFunc.COUNT:
        value = group.count
    elif group.count == 0:
        value = ""
    elif func is AggregateFunc.AVG:
        value = group.total / group.count
    elif func is AggregateFunc.SUM:
        value = group.total
    elif func is AggregateFunc.MIN:
        value = group.minimum if group.minimum is not None else ""
    else:
        value = group.maximum if group.maximum is not None else ""
    if isinstance(value, float) and not math.isfinite(value):
        value = ""
    if isinstance(value, int | float) and not isinstance(value, bool) and _result_type(group, func) == "Float64":
        value = float(value)
    out["valueType"] = _result_type(group, func) if value != "" else group.value_type
    out["value"] = value
    return out
