"""Transforms of events: EdgeX's `Transform` (Type json; here also lineprotocol) and `AddTags`, and a field
mapping (`MapFields`) that renames or drops readings by resource name."""

from __future__ import annotations

from typing import Any

import orjson

from app_services.application.data import AppFunction, Context
from app_services.application.lineprotocol import LineProtocol
from app_services.application.params import Params


def line_protocol_options(p: Params) -> LineProtocol:
    """The measurement/tag/field mapping parameters shared by `Transform Type=lineprotocol` and InfluxDBExport."""
    defaults = LineProtocol()
    tags = p.pairs("Tags", sep="=")
    return LineProtocol(
        measurement=p.text("Measurement", defaults.measurement) or defaults.measurement,
        field_key=p.text("FieldKey", defaults.field_key) or defaults.field_key,
        tags=tags or defaults.tags,
        event_tags=p.flag("EventTags", True),
    )


def to_line_protocol(lp: LineProtocol) -> AppFunction:
    async def run(ctx: Context, event: dict[str, Any]) -> bytes | None:
        data = lp.encode(event)
        if not data:
            return None
        ctx.kind = "lp"
        return data

    return run


async def to_json(ctx: Context, event: dict[str, Any]) -> bytes:
    ctx.kind = "json"
    return orjson.dumps(event)


def transform(p: Params) -> AppFunction:
    kind = p.choice("Type", ("json", "lineprotocol"), "json")
    if kind == "json":
        return to_json
    return to_line_protocol(line_protocol_options(p))


def add_tags(p: Params) -> AppFunction:
    """EdgeX's AddTags: `tags: "key:value,key2:value2"` merged into the event's tags (values replace)."""
    tags = p.pairs("tags")
    if not tags:
        raise p.fail("tags", "is required (key:value,key2:value2)")

    async def run(ctx: Context, event: dict[str, Any]) -> dict[str, Any]:
        return {**event, "tags": {**(event.get("tags") or {}), **tags}}

    return run


def map_fields(p: Params) -> AppFunction:
    """`Fields: "old:new,..."` renames readings' resourceName (what becomes a field key or JSON name);
    `DropUnmapped: true` drops readings not named there."""
    mapping = p.pairs("Fields")
    if not mapping:
        raise p.fail("Fields", "is required (resource:newName,...)")
    drop = p.flag("DropUnmapped", False)

    async def run(ctx: Context, event: dict[str, Any]) -> dict[str, Any] | None:
        readings = []
        for reading in event["readings"]:
            name = mapping.get(reading["resourceName"])
            if name is None:
                if not drop:
                    readings.append(reading)
            else:
                readings.append({**reading, "resourceName": name})
        if not readings:
            return None
        return {**event, "readings": readings}

    return run


__all__ = ["add_tags", "line_protocol_options", "map_fields", "to_json", "to_line_protocol", "transform"]
