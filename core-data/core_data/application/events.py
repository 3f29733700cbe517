"""Events: ingestion (REST and bus), queries, deletes."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from core_data.application.batching import GroupCommitWriter
from core_data.application.pagination import check_range, check_time_range, page_of
from core_data.application.ports import EventQuery, EventStore
from core_data.application.values import event_with_numeric_values
from edgeplane_common.edgex.events import EventRecord, is_uuid, unwrap_request, validate_event
from edgeplane_common.errors import ContractInvalid, DuplicateName, NotFound

log = logging.getLogger(__name__)


class EventPublisher(Protocol):
    def check(self, service: str, event: dict[str, Any]) -> None:
        """ContractInvalid if the event could never be published (its names make a subject the bus refuses):
        asked before the event is stored, so such an event is a 400, not a stored event nobody hears of."""
        ...

    async def publish(self, service: str, event: dict[str, Any]) -> None:
        """Tell subscribers about an event added over REST; never fails the request."""
        ...


class EventManager:
    def __init__(
        self,
        store: EventStore,
        *,
        max_result_count: int = 1024,
        max_batch: int = 512,
        linger: float = 0.0,
        persist: bool = True,
        publisher: EventPublisher | None = None,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.max_result_count = max_result_count
        self.persist = persist
        self.publisher = publisher
        self.clock = clock
        self.writer: GroupCommitWriter[EventRecord, bool] = GroupCommitWriter(
            store.add, max_batch=max_batch, linger=linger, name="event store"
        )
        self._background: set[asyncio.Task[int]] = set()
        self.ingest_writes = 0
        """Store writes of events from the bus (one per bus batch)."""
        self.ingested = 0
        """Events from the bus written (duplicates included)."""

    # -- ingestion -------------------------------------------------------------------------------------
    async def add(self, body: Any, *, service: str, profile: str, device: str, source: str) -> tuple[str, str | None]:
        """POST /event: an AddEventRequest whose event matches the path. (event id, requestId).

        ContractInvalid when invalid or not matching the path, DuplicateName when the id exists."""
        raw_event, request_id = unwrap_request(body)
        # As EdgeX's REST API: every reading names its device and profile and has an origin (400 otherwise).
        record = validate_event(raw_event, complete_readings=False)
        doc = record.doc
        for key, expected in (("profileName", profile), ("deviceName", device), ("sourceName", source)):
            if doc[key] != expected:
                raise ContractInvalid(f"event's {key} {doc[key]!r} does not match {expected!r} in the path")
        if self.publisher is not None:
            self.publisher.check(service, doc)
        if self.persist and not await self.writer.submit(record):
            raise DuplicateName(f"an event with id {doc['id']!r} already exists")
        if self.publisher is not None:
            await self.publisher.publish(service, doc)
        return doc["id"], request_id

    @staticmethod
    def validate_ingested(payload: Any) -> EventRecord:
        """An event (or AddEventRequest, as EdgeX device services send) from the bus, validated.

        ContractInvalid when it is not a valid event (redelivering it would not help)."""
        if isinstance(payload, dict) and "readings" not in payload and "event" in payload:
            payload, _ = unwrap_request(payload)
        return validate_event(payload)

    async def ingest_batch(self, records: Sequence[EventRecord]) -> int:
        """Events from the bus, already batched by it: one store write (idempotent by event id, so each is
        stored once whatever the number of deliveries). How many were newly stored. Raises if the store
        fails, so the bus redelivers the batch."""
        if not self.persist or not records:
            return 0
        stored = sum(await self.store.add(records))
        self.ingest_writes += 1
        self.ingested += len(records)
        return stored

    # -- queries ---------------------------------------------------------------------------------------
    async def get(self, event_id: str, *, numeric: bool = False) -> dict[str, Any]:
        _check_id(event_id)
        doc = await self.store.get(event_id)
        if doc is None:
            raise NotFound(f"no event with id {event_id!r}")
        return event_with_numeric_values(doc) if numeric else doc

    async def page(
        self,
        *,
        device: str | None = None,
        start: int | None = None,
        end: int | None = None,
        offset: int = 0,
        limit: int = 20,
        numeric: bool = False,
    ) -> tuple[list[dict[str, Any]], int]:
        """Events newest first, paged as EdgeX (see pagination.page_of); and the total (0 if not counted)."""
        if start is not None and end is not None:
            check_time_range(start, end)
        page = page_of(offset, limit, self.max_result_count)
        query = EventQuery(device=device, start=start, end=end, offset=page.offset, limit=page.limit)
        total = 0
        if page.count_total:
            total = await self.store.count_events(query)
            check_range(page.offset, total)
            if page.offset >= total:
                return [], total
        events = await self.store.events(query)
        if numeric:
            events = [event_with_numeric_values(e) for e in events]
        return events, total

    async def count(self, *, device: str | None = None) -> int:
        return await self.store.count_events(EventQuery(device=device))

    # -- deletes ---------------------------------------------------------------------------------------
    async def delete(self, event_id: str) -> None:
        _check_id(event_id)
        if not await self.store.delete_event(event_id):
            raise NotFound(f"no event with id {event_id!r}")

    def delete_by_device(self, device: str) -> asyncio.Task[int]:
        """Start removing every event of `device` (EdgeX answers 202 and deletes in the background)."""
        if not device.strip():
            raise ContractInvalid("a blank device name is not allowed")
        return self._in_background(EventQuery(device=device), f"events of device {device!r}")

    def delete_by_age(self, age: int) -> asyncio.Task[int]:
        """Start removing every event whose origin is `age` nanoseconds or more in the past."""
        if age < 0:
            raise ContractInvalid(f"age must be 0 or more nanoseconds, got {age}")
        return self._in_background(EventQuery(end=self.clock() - age), f"events older than {age} ns")

    def _in_background(self, query: EventQuery, what: str) -> asyncio.Task[int]:
        async def run() -> int:
            try:
                removed = await self.store.delete_events(query)
            except Exception:
                log.exception("deleting %s failed", what)
                raise
            log.info("deleted %d %s", removed, what)
            return removed

        task = asyncio.get_running_loop().create_task(run(), name=f"delete {what}")
        self._background.add(task)
        task.add_done_callback(self._forget)
        return task

    def _forget(self, task: asyncio.Task[int]) -> None:
        self._background.discard(task)
        if not task.cancelled():
            task.exception()  # retrieved (and logged by run): asyncio must not warn about it

    async def close(self) -> None:
        """Write what is pending and finish the deletes in progress."""
        await self.writer.close()
        if self.writer.writes:
            log.info(
                "stored %d event(s) in %d write(s) (%.1f per write)",
                self.writer.items,
                self.writer.writes,
                self.writer.items / self.writer.writes,
            )
        if self.ingest_writes:
            log.info(
                "stored %d event(s) from the bus in %d write(s) (%.1f per write)",
                self.ingested,
                self.ingest_writes,
                self.ingested / self.ingest_writes,
            )
        if self._background:
            await asyncio.wait(set(self._background), timeout=30)


def _check_id(event_id: str) -> None:
    if not is_uuid(event_id):
        raise ContractInvalid(f"event id {event_id!r} is not a UUID")
