"""Events from the JetStream stream into the store: a durable pull consumer shared by every core-data.

The bus hands each fetch (up to `fetch_batch` events) to the handler at once; the batch is validated and
stored in one write, and the bus acknowledges every message of it only after that write succeeded. A store
failure raises, so the bus naks the batch and JetStream redelivers it later; writes are idempotent by event
id, so a redelivery stores nothing twice.

An invalid event is refused: the bus dead-letters it at once (logged, counted, copied to the dead-letter
stream, terminated) without holding back the valid events of its batch; redelivering it could never succeed.
"""

from __future__ import annotations

import logging
from typing import Any

from core_data.application.events import EventManager
from core_data.settings import IngestSettings
from edgeplane_common.bus import MessageBus, MessageEnvelope, Rejections, Topics
from edgeplane_common.bus.consumers import BatchConsumers
from edgeplane_common.bus.guard import check_subject
from edgeplane_common.edgex.events import EventRecord, decode_event_payload
from edgeplane_common.errors import ContractInvalid, EdgeError

log = logging.getLogger(__name__)


def event_payload(envelope: MessageEnvelope) -> Any:
    """The event (or AddEventRequest) an envelope carries (see `edgex.events.decode_event_payload`)."""
    return decode_event_payload(envelope.payload, envelope.content_type)


class EventIngestor:
    def __init__(self, bus: MessageBus, events: EventManager, settings: IngestSettings) -> None:
        self.bus = bus
        self.events = events
        self.settings = settings
        self.consumers = BatchConsumers(
            bus,
            Topics.EVENTS_STREAM,
            [Topics.EVENTS_ALL],
            self.handle,
            [(settings.durable, settings.topic)],
            members=settings.consumers,
            batch=settings.fetch_batch,
        )
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

    async def start(self) -> None:
        await self.consumers.start()

    async def run(self) -> None:
        """`start`, retried until the bus and JetStream are there (logged once, and once recovered)."""
        await self.consumers.run()

    def problem(self) -> str | None:
        return self.consumers.problem()

    async def stop(self) -> None:
        await self.consumers.stop()


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
