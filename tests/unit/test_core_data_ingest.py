"""Ingestion from the bus (in-memory bus and store): acked only once stored, stored once, bad events dropped."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Sequence

import orjson
import pytest

from core_data.application.events import EventManager
from core_data.application.ports import EventQuery, ReadingQuery
from core_data.infrastructure.memory_store import InMemoryEventStore
from core_data.messaging.ingest import EventIngestor, event_payload
from core_data.settings import IngestSettings
from edgeplane_common.bus import MessageEnvelope, Topics
from edgeplane_common.bus.memory import InMemoryBus
from edgeplane_common.edgex.events import EventRecord
from edgeplane_common.errors import ContractInvalid, ServiceUnavailable
from tests.support.core_data import add_request, event
from tests.support.stack import wait_until

TOPIC = Topics.events("device-virtual", "Thermostat", "dev-1", "Climate")


class FlakyStore(InMemoryEventStore):
    """Fails the first `failures` writes, as Redis going away would."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.writes = 0

    async def add(self, events: Sequence[EventRecord]) -> list[bool]:
        self.writes += 1
        if self.failures > 0:
            self.failures -= 1
            raise ServiceUnavailable("event store unavailable: connection refused")
        return await super().add(events)


@pytest.fixture
async def bus() -> AsyncIterator[InMemoryBus]:
    b = InMemoryBus(redelivery_delay=0.05)
    await b.connect()
    yield b
    await b.close()


async def start(bus: InMemoryBus, store: InMemoryEventStore, consumers: int = 4) -> tuple[EventIngestor, EventManager]:
    manager = EventManager(store)
    ingestor = EventIngestor(bus, manager, IngestSettings(consumers=consumers, fetch_batch=2))
    await ingestor.start()
    return ingestor, manager


async def test_events_are_stored_once_whatever_the_deliveries(bus: InMemoryBus) -> None:
    store = InMemoryEventStore()
    ingestor, manager = await start(bus, store)
    events = [event("dev-1") for _ in range(20)]
    for ev in events:
        await bus.publish_durable(TOPIC, MessageEnvelope(payload=ev))
    # a redelivery of the same event (what a crash before the ack produces)
    await bus.publish_durable(TOPIC, MessageEnvelope(payload=events[0]))
    await bus.publish_durable(TOPIC, MessageEnvelope(payload=add_request(events[1])))
    await wait_until(lambda: store.count_events(EventQuery()), timeout=5)
    await wait_until(lambda: manager.ingested == 22, timeout=5)
    assert await store.count_events(EventQuery()) == 20
    assert await store.count_readings(ReadingQuery()) == 40
    assert manager.ingest_writes < 22, "a batch from the bus is stored in one write"
    await ingestor.stop()
    await manager.close()


async def test_invalid_events_are_dropped_and_do_not_block(bus: InMemoryBus, caplog: pytest.LogCaptureFixture) -> None:
    store = InMemoryEventStore()
    ingestor, manager = await start(bus, store, consumers=1)
    bad = event("dev-1")
    bad["readings"][0]["value"] = "hot"
    await bus.publish_durable(TOPIC, MessageEnvelope(payload=bad))
    await bus.publish_durable(TOPIC, MessageEnvelope(payload="not json"))
    await bus.publish_durable(TOPIC, MessageEnvelope(payload=[1, 2]))
    good = event("dev-1")
    await bus.publish_durable(TOPIC, MessageEnvelope(payload=good))
    await wait_until(lambda: store.get(good["id"]), timeout=5)
    assert await store.count_events(EventQuery()) == 1
    assert ingestor.dropped == 3
    assert any("does not match valueType Float64" in r.message for r in caplog.records)
    await ingestor.stop()
    await manager.close()


async def test_a_store_outage_redelivers_until_stored(bus: InMemoryBus) -> None:
    store = FlakyStore(failures=2)
    ingestor, manager = await start(bus, store, consumers=1)
    ev = event("dev-1")
    await bus.publish_durable(TOPIC, MessageEnvelope(payload=ev))
    await wait_until(lambda: store.get(ev["id"]), timeout=5)
    assert store.writes == 3
    assert await store.count_events(EventQuery()) == 1
    await ingestor.stop()
    await manager.close()


def test_payload_forms() -> None:
    ev = event()
    assert event_payload(MessageEnvelope(payload=ev)) == ev
    text = orjson.dumps(ev).decode()
    assert event_payload(MessageEnvelope(payload=text)) == ev
    # Go device services send a []byte payload, which JSON encodes as base64
    assert event_payload(MessageEnvelope(payload=base64.b64encode(text.encode()).decode())) == ev
    with pytest.raises(ContractInvalid, match="CBOR"):
        event_payload(MessageEnvelope(payload="2gAA", content_type="application/cbor"))
    with pytest.raises(ContractInvalid, match="neither JSON nor base64"):
        event_payload(MessageEnvelope(payload="%%%"))
    with pytest.raises(ContractInvalid, match="must be an event object"):
        event_payload(MessageEnvelope(payload=None))
