"""Transforms of events: EdgeX's `Transform` (Type json or xml; here also lineprotocol) and `AddTags`, and a field
mapping (`MapFields`) that renames or drops readings by resource name."""

from __future__ import annotations

from typing import Any

import orjson

from app_services.application.data import CONTENT_TYPES, AppFunction, Context
from app_services.application.functions.event_xml import event_to_xml
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


async def to_xml(ctx: Context, event: dict[str, Any]) -> bytes:
    """EdgeX's TransformToXML: the event as Go's encoding/xml writes EdgeX's Event DTO (see event_xml)."""
    ctx.kind = "xml"
    return event_to_xml(event).encode()


TRANSFORM_TYPES = ("json", "xml", "lineprotocol")


def transform(p: Params) -> AppFunction:
    kind = p.choice("Type", TRANSFORM_TYPES, "json")
    if kind == "json":
        return to_json
    if kind == "xml":
        return to_xml
    return to_line_protocol(line_protocol_options(p))


def set_response_data(p: Params) -> AppFunction:
    """EdgeX's SetResponseData: the data as it is here becomes the response of the HTTP trigger (an event not
    yet transformed as JSON, as EdgeX coerces it); the data goes on unchanged. `ResponseContentType` sets the
    response's Content-Type, else the one the data has (Transform's, Compress's; JSON for an event)."""
    content_type = p.text("ResponseContentType", "") or ""

    async def run(ctx: Context, data: Any) -> Any:
        ctx.response = data if isinstance(data, bytes) else orjson.dumps(data)
        ctx.response_type = content_type or ctx.content_type or CONTENT_TYPES[ctx.kind]
        return data

    return run


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


__all__ = [
    "TRANSFORM_TYPES",
    "add_tags",
    "line_protocol_options",
    "map_fields",
    "set_response_data",
    "to_json",
    "to_line_protocol",
    "to_xml",
    "transform",
]
