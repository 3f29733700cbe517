"""Ports of core-data's use cases: the event store and the view of core-metadata retention needs.

Queries are two small pydantic models (which events, which readings) rather than one store method per
filter combination: every REST operation, retention and the deletes are expressed with them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edgeplane_common.edgex.events import EventRecord
from edgeplane_common.edgex.values import INTEGER_TYPES, NUMERIC_TYPES
from edgeplane_common.models import Device


class EventQuery(BaseModel):
    """Which events: every filter given must match; newest first (origin descending), then paged.

    `start`/`end` bound the origin (nanoseconds, both inclusive). `source` needs `device` (retention
    works per device source). `limit=None` means no limit."""

    model_config = ConfigDict(frozen=True)

    device: str | None = None
    source: str | None = None
    start: int | None = None
    end: int | None = None
    offset: int = Field(0, ge=0)
    limit: int | None = Field(None, ge=0)

    @model_validator(mode="after")
    def _source_needs_device(self) -> EventQuery:
        if self.source is not None and self.device is None:
            raise ValueError("an event query by source also names the device")
        return self


class ReadingQuery(BaseModel):
    """Which readings: every filter given must match; newest first (origin descending), then paged.

    `resources` empty means any resource; several mean any of them (the multiple-resources query)."""

    model_config = ConfigDict(frozen=True)

    device: str | None = None
    resources: tuple[str, ...] = ()
    start: int | None = None
    end: int | None = None
    offset: int = Field(0, ge=0)
    limit: int | None = Field(None, ge=0)


@dataclass(slots=True)
class AggregateGroup:
    """Running statistics of one (device, resource, profile, valueType) group of readings.

    Only numeric values count; a group of another value type has `count == 0` and no min/max/sum."""

    device: str
    resource: str
    profile: str
    value_type: str
    count: int = 0
    total: int | float = 0
    minimum: int | float | None = None
    maximum: int | float | None = None
    _integer: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self._integer = self.value_type in INTEGER_TYPES

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.device, self.resource, self.profile, self.value_type)

    @property
    def numeric(self) -> bool:
        return self.value_type in NUMERIC_TYPES

    def add(self, text: str | bytes | None) -> None:
        if not text or not self.numeric:
            return
        value: int | float = int(text) if self._integer else float(text)
        self.count += 1
        self.total += value
        if self.minimum is None or value < self.minimum:
            self.minimum = value
        if self.maximum is None or value > self.maximum:
            self.maximum = value


class EventStore(Protocol):
    """Persistence of events and their readings. Writes are idempotent by event id."""

    async def add(self, events: Sequence[EventRecord]) -> list[bool]:
        """Store a batch in one round trip. Per event: True if stored, False if an event with its id
        already existed (then nothing of it is written). A repeated id within the batch counts once."""
        ...

    async def get(self, event_id: str) -> dict[str, Any] | None:
        """The event document, or None."""
        ...

    async def events(self, query: EventQuery) -> list[dict[str, Any]]:
        """The event documents the query selects, newest first."""
        ...

    async def count_events(self, query: EventQuery) -> int:
        """How many events match the query's filters (offset and limit ignored)."""
        ...

    async def readings(self, query: ReadingQuery) -> list[dict[str, Any]]:
        """The reading documents the query selects, newest first."""
        ...

    async def count_readings(self, query: ReadingQuery) -> int:
        """How many readings match the query's filters (offset and limit ignored)."""
        ...

    async def aggregate(self, query: ReadingQuery) -> list[AggregateGroup]:
        """Statistics per (device, resource, profile, valueType) of the readings matching the query's
        filters (offset and limit ignored), ordered by those four names."""
        ...

    async def delete_event(self, event_id: str) -> bool:
        """Remove an event and its readings; False if there was none."""
        ...

    async def delete_events(self, query: EventQuery) -> int:
        """Remove the events the query selects (with their readings); how many were removed."""
        ...

    async def sources(self) -> list[tuple[str, str]]:
        """Every (device, source) that has events."""
        ...

    async def close(self) -> None: ...


class MetadataSource(Protocol):
    """What core-data needs of core-metadata: the devices, for their autoEvents' retention."""

    async def all_devices(self) -> list[Device]:
        """Every device; ServiceUnavailable when core-metadata cannot be asked."""
        ...

    async def close(self) -> None: ...
