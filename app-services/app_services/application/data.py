"""What flows through a pipeline: an EdgeX event (a dict, as `edgex.events.validate_event` gives it) until a
transform encodes it, bytes after; the `Context` of the message it came from travels alongside."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

Kind = Literal["event", "json", "xml", "lp", "bytes"]
"""What an item's bytes are: an EdgeX event as JSON, other JSON (a transform's output), an event as EdgeX's
XML, InfluxDB line protocol, or opaque bytes. Decides how a batch is joined (JSON array, lines) and what an
export may take."""

CONTENT_TYPES: dict[str, str] = {
    "event": "application/json",
    "json": "application/json",
    "xml": "application/xml",
    "lp": "text/plain; charset=utf-8",
    "bytes": "application/octet-stream",
}

Data = dict[str, Any] | bytes


@dataclass(slots=True)
class Context:
    """The message a pipeline run is about (EdgeX's context variables, for placeholders in URLs and topics)."""

    device: str = ""
    profile: str = ""
    source: str = ""
    topic: str = ""
    event_id: str = ""
    kind: Kind = "event"
    content_type: str = ""
    variables: dict[str, str] = field(default_factory=dict)
    response: bytes | None = None
    """What SetResponseData set: the HTTP trigger's response body (the message-bus trigger has no response)."""
    response_type: str = ""

    def lookup(self, name: str) -> str | None:
        """A placeholder's value, by EdgeX's names in any casing (`{deviceName}`, `{devicename}`)."""
        key = name.lower()
        builtin = {
            "devicename": self.device,
            "profilename": self.profile,
            "sourcename": self.source,
            "receivedtopic": self.topic,
            "eventid": self.event_id,
        }.get(key)
        if builtin is not None:
            return builtin
        return self.variables.get(key)


AppFunction = Callable[[Context, Any], Awaitable[Any]]
"""app-functions-sdk's contract: `async (ctx, data) -> data | None`; None filters the data out (the run ends
there), an exception fails the run."""


@dataclass(slots=True)
class Item:
    """One event's output of the per-event functions: what goes into the durable buffer."""

    data: bytes
    kind: Kind
    ctx: Context


__all__ = ["CONTENT_TYPES", "AppFunction", "Context", "Data", "Item", "Kind"]
