"""EdgeX's filters (FilterByDeviceName, FilterByProfileName, FilterBySourceName, FilterByResourceName) and a
value-range filter. `FilterOut: false` (the default) keeps what matches; `true` drops it. A resource or
value filter that leaves an event without readings filters the whole event out (None)."""

from __future__ import annotations

import math
from typing import Any

from app_services.application.data import AppFunction, Context
from app_services.application.params import Params
from edgeplane_common.edgex.values import NUMERIC_TYPES


def _by_event_field(field: str, names_param: str) -> Any:
    def build(p: Params) -> AppFunction:
        names = frozenset(p.names(names_param))
        filter_out = p.flag("FilterOut", False)

        async def run(ctx: Context, event: dict[str, Any]) -> dict[str, Any] | None:
            matches = event.get(field) in names
            return event if matches != filter_out else None

        return run

    return build


filter_by_device_name = _by_event_field("deviceName", "DeviceNames")
filter_by_profile_name = _by_event_field("profileName", "ProfileNames")
filter_by_source_name = _by_event_field("sourceName", "SourceNames")


def _with_readings(event: dict[str, Any], readings: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not readings:
        return None
    if len(readings) == len(event["readings"]):
        return event
    return {**event, "readings": readings}


def filter_by_resource_name(p: Params) -> AppFunction:
    names = frozenset(p.names("ResourceNames"))
    filter_out = p.flag("FilterOut", False)

    async def run(ctx: Context, event: dict[str, Any]) -> dict[str, Any] | None:
        kept = [r for r in event["readings"] if (r["resourceName"] in names) != filter_out]
        return _with_readings(event, kept)

    return run


def reading_number(reading: dict[str, Any]) -> float | None:
    """The value of a numeric reading (None for other types, null readings and arrays)."""
    if reading.get("valueType") not in NUMERIC_TYPES:
        return None
    value = reading.get("value")
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def filter_by_value(p: Params) -> AppFunction:
    """Readings of `ResourceNames` (every numeric reading when empty) within [Min, Max] are kept (or, with
    FilterOut, dropped); other readings pass untouched."""
    names = frozenset(p.names("ResourceNames"))
    low = p.number("Min", -math.inf)
    high = p.number("Max", math.inf)
    assert low is not None
    assert high is not None
    if low > high:
        raise p.fail("Min", f"({low}) is above Max ({high})")
    filter_out = p.flag("FilterOut", False)

    async def run(ctx: Context, event: dict[str, Any]) -> dict[str, Any] | None:
        kept = []
        for reading in event["readings"]:
            if names and reading["resourceName"] not in names:
                kept.append(reading)
                continue
            number = reading_number(reading)
            if number is None or ((low <= number <= high) != filter_out):
                kept.append(reading)
        return _with_readings(event, kept)

    return run


__all__ = [
    "filter_by_device_name",
    "filter_by_profile_name",
    "filter_by_resource_name",
    "filter_by_source_name",
    "filter_by_value",
    "reading_number",
]
