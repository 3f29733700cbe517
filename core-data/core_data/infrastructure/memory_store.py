"""In-memory EventStore for unit tests of the use cases; passes the same contract suite as Redis.

Ordering matches the Redis adapter exactly: events by (origin, id), readings by (origin, position in the
event, event id), newest first."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import orjson

from core_data.application.ports import AggregateGroup, EventQuery, ReadingQuery
from edgeplane_common.edgex.events import EventRecord


def _in_range(origin: int, start: int | None, end: int | None) -> bool:
    return (start is None or origin >= start) and (end is None or origin <= end)


def _page(items: list[Any], offset: int, limit: int | None) -> list[Any]:
    return items[offset:] if limit is None else items[offset : offset + limit]


class InMemoryEventStore:
    def __init__(self) -> None:
        # Stored as the JSON blob, as Redis holds it, so callers can never mutate stored state by reference.
        self._events: dict[str, EventRecord] = {}

    async def add(self, events: Sequence[EventRecord]) -> list[bool]:
        out = []
        for event in events:
            if event.id in self._events:
                out.append(False)
            else:
                self._events[event.id] = event
                out.append(True)
        return out

    async def get(self, event_id: str) -> dict[str, Any] | None:
        event = self._events.get(event_id)
        return None if event is None else _load(event.blob)

    def _select(self, query: EventQuery) -> list[EventRecord]:
        matched = [
            e
            for e in self._events.values()
            if (query.device is None or e.device == query.device)
            and (query.source is None or e.source == query.source)
            and _in_range(e.origin, query.start, query.end)
        ]
        matched.sort(key=lambda e: (e.origin, e.id.encode()), reverse=True)
        return matched

    async def events(self, query: EventQuery) -> list[dict[str, Any]]:
        return [_load(e.blob) for e in _page(self._select(query), query.offset, query.limit)]

    async def count_events(self, query: EventQuery) -> int:
        return len(self._select(query))

    def _reading_hits(self, query: ReadingQuery) -> list[tuple[tuple[int, int, bytes], EventRecord, int]]:
        resources = set(query.resources)
        hits = []
        for e in self._events.values():
            if query.device is not None and e.device != query.device:
                continue
            for i, r in enumerate(e.readings):
                if (not resources or r.resource in resources) and _in_range(r.origin, query.start, query.end):
                    hits.append(((r.origin, i, e.id.encode()), e, i))
        hits.sort(key=lambda h: h[0], reverse=True)
        return hits

    async def readings(self, query: ReadingQuery) -> list[dict[str, Any]]:
        return [_load(e.blob)["readings"][i] for _, e, i in _page(self._reading_hits(query), query.offset, query.limit)]

    async def count_readings(self, query: ReadingQuery) -> int:
        return len(self._reading_hits(query))

    async def aggregate(self, query: ReadingQuery) -> list[AggregateGroup]:
        groups: dict[tuple[str, str, str, str], AggregateGroup] = {}
        for _, e, i in self._reading_hits(query):
            r = e.readings[i]
            key = (e.device, r.resource, r.profile, r.value_type)
            group = groups.get(key)
            if group is None:
                group = groups[key] = AggregateGroup(*key)
            group.add(r.value)
        return [groups[k] for k in sorted(groups)]

    async def delete_event(self, event_id: str) -> bool:
        return self._events.pop(event_id, None) is not None

    async def delete_events(self, query: EventQuery) -> int:
        chosen = _page(self._select(query), query.offset, query.limit)
        self._remove(e.id for e in chosen)
        return len(chosen)

    def _remove(self, ids: Iterable[str]) -> None:
        for event_id in ids:
            self._events.pop(event_id, None)

    async def sources(self) -> list[tuple[str, str]]:
        return sorted({(e.device, e.source) for e in self._events.values()})

    async def close(self) -> None:
        return None


def _load(blob: bytes) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(blob)
    return doc
