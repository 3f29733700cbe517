"""Events from the JetStream stream into the store: a durable pull consumer shared by every core-data.

The bus hands each fetch (up to `fetch_batch` events) to the handler at once; the batch is validated and
stored in one write, and the bus acknowledges every message of it only after that write succeeded. A store
failure raises, so the bus naks the batch and JetStream redelivers it later; writes are idempotent by event
id, so a redelivery stores nothing twice.

An invalid event is refused: the bus dead-letters it at once (logged, counted, copied to the dead-letter
stream, terminated) without holding back the valid events of its batch; redelivering it could never succeed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from core_data.application.events import EventManager
from core_data.settings import IngestSettings
from edgeplane_common.bus import Consumer, MessageBus, MessageEnvelope, Rejections, Topics
from edgeplane_common.bus.guard import check_subject
from edgeplane_common.edgex.events import EventRecord, decode_event_payload
from edgeplane_common.errors import ContractInvalid, EdgeError

log = logging.getLogger(__name__)

RETRY_S = 2.0


def event_payload(envelope: MessageEnvelope) -> Any:
    """The event (or AddEventRequest) an envelope carries (see `edgex.events.decode_event_payload`)."""
    return decode_event_payload(envelope.payload, envelope.content_type)


class EventIngestor:
    def __init__(self, bus: MessageBus, events: EventManager, settings: IngestSettings) -> None:
        self.bus = bus
        self.events = events
        self.settings = settings
        self.subscriptions: list[Consumer] = []
        self.dropped = 0
        """Invalid events refused (dead-lettered by the bus) instead of stored."""

    async def handle(self, envelopes: list[MessageEnvelope]) -> Rejections | None:
        records: list[EventRecord] = []
        rejected: dict[int, str] = {}
        validate = self.events.validate_ingested
        for i, envelope in enumerate(envelopes):
            try:
                records.append(validate(event_payload(envelope)))
            except ContractInvalid as err:
                self.dropped += 1
                rejected[i] = f"invalid event: {err}"
        await self.events.ingest_batch(records)
        return rejected or None

    def problem(self) -> str | None:
        """None while every pull consumer runs; else why events are not being consumed (readiness)."""
        if not self.settings.enabled:
            return None
        if not self.subscriptions:
            return "the events consumer has not started (waiting for NATS and the stream)"
        for sub in self.subscriptions:
            trouble = sub.problem()
            if trouble is not None:
                return trouble
        return None

    async def start(self) -> None:
        """Ensure the stream, then start the pull consumers (the first creates the durable consumer)."""
        await self.bus.ensure_stream(Topics.EVENTS_STREAM, [Topics.EVENTS_ALL])
        s = self.settings
        for _ in range(s.consumers):
            self.subscriptions.append(
                await self.bus.consume_batch(Topics.EVENTS_STREAM, s.durable, s.topic, self.handle, batch=s.fetch_batch)
            )
        log.info("consuming %s as %s with %d pull consumer(s)", s.topic, s.durable, s.consumers)

    async def run(self) -> None:
        """`start`, retried until the bus and JetStream are there (logged once, and once recovered)."""
        failing = False
        while True:
            try:
                await self.start()
            except EdgeError as err:
                await self._unsubscribe()
                if not failing:
                    log.warning("cannot consume events yet (%s); retrying every %gs", err, RETRY_S)
                    failing = True
                await asyncio.sleep(RETRY_S)
                continue
            if failing:
                log.info("consuming events now")
            return

    async def _unsubscribe(self) -> None:
        subs, self.subscriptions = self.subscriptions, []
        for sub in subs:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def stop(self) -> None:
        # Concurrently: each waits for the batch its handler is storing.
        subs, self.subscriptions = self.subscriptions, []
        await asyncio.gather(*(sub.unsubscribe() for sub in subs), return_exceptions=True)


class BusEventPublisher:
    """Publishes events added over REST, as EdgeX core-data does, on
    `edgex.events.core.<service>.<profile>.<device>.<source>` (core NATS: at most once)."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self._failing = False

    def check(self, service: str, event: dict[str, Any]) -> None:
        check_subject(self._topic(service, event), wildcards=False)

    @staticmethod
    def _topic(service: str, event: dict[str, Any]) -> str:
        return Topics.core_events(service, event["profileName"], event["deviceName"], event["sourceName"])

    async def publish(self, service: str, event: dict[str, Any]) -> None:
        topic = self._topic(service, event)
        try:
            await self.bus.publish(topic, MessageEnvelope(payload=event))
        except EdgeError as err:
            if not self._failing:
                log.warning("cannot publish events added over REST (%s)", err)
                self._failing = True
            return
        if self._failing:
            log.info("publishing events added over REST again")
            self._failing = False
