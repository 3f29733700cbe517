"""The triggers of a pipeline: events from the JetStream stream (the instance's own durable consumer with a
subject filter, so a restarted instance resumes where it stopped) and events posted to /api/v3/trigger.

Both decode and validate events with the kernel (`edgex.events`) and hand them to `EventPipeline.accept`,
which returns once the pipeline's output is in the durable buffer; only then is a JetStream message
acknowledged. A buffer that cannot store (NATS away) raises a transient error, so the bus redelivers the
batch later; an invalid event is dead-lettered at once.
"""

from __future__ import annotations

import asyncio
from typing import Any

from app_services.application.data import Context
from app_services.application.runtime import Counters, EventPipeline
from edgeplane_common.bus import Consumer, MessageBus, MessageEnvelope, Rejections, Topics
from edgeplane_common.bus.consumers import BatchConsumers
from edgeplane_common.edgex.events import decode_event_payload, unwrap_request, validate_event
from edgeplane_common.errors import ContractInvalid


def event_from_body(raw: Any) -> dict[str, Any]:
    """A validated event from an Event or AddEventRequest object (EdgeX's trigger accepts both)."""
    if isinstance(raw, dict) and any(str(k).lower() == "event" for k in raw):
        raw, _ = unwrap_request(raw)
    return validate_event(raw).doc


def context_of(event: dict[str, Any], topic: str = "") -> Context:
    return Context(
        device=event["deviceName"],
        profile=event["profileName"],
        source=event["sourceName"],
        topic=topic,
        event_id=event["id"],
    )


class EventTrigger:
    def __init__(
        self,
        bus: MessageBus,
        pipeline: EventPipeline,
        counters: Counters,
        *,
        durable: str,
        subjects: list[str],
        consumers: int = 1,
        fetch_batch: int = 256,
    ) -> None:
        self.bus = bus
        self.pipeline = pipeline
        self.counters = counters
        self.consumers = BatchConsumers(
            bus,
            Topics.EVENTS_STREAM,
            [Topics.EVENTS_ALL],
            self.handle,
            [(durable if index == 0 else f"{durable}-{index}", subject) for index, subject in enumerate(subjects)],
            members=consumers,
            batch=fetch_batch,
        )

    @property
    def subscriptions(self) -> list[Consumer]:
        return self.consumers.subscriptions

    async def handle(self, envelopes: list[MessageEnvelope]) -> Rejections | None:
        events: list[tuple[Context, dict[str, Any]]] = []
        rejected: dict[int, str] = {}
        for i, envelope in enumerate(envelopes):
            try:
                event = event_from_body(decode_event_payload(envelope.payload, envelope.content_type))
            except ContractInvalid as err:
                self.counters.invalid += 1
                rejected[i] = f"invalid event: {err}"
                continue
            events.append((context_of(event, envelope.received_topic or ""), event))
        if events:
            await self.pipeline.accept(events)
        return rejected or None

    def problem(self) -> str | None:
        return self.consumers.problem()

    async def run(self, ready: asyncio.Event | None = None) -> None:
        """Start the consumers once the buffer is ready, retried until NATS and the stream are there."""
        if ready is not None:
            await ready.wait()
        await self.consumers.run()

    async def stop(self) -> None:
        await self.consumers.stop()


__all__ = ["EventTrigger", "context_of", "event_from_body"]
