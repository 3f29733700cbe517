"""The publish action: an alert on a NATS subject, in an EdgeX envelope (core NATS, at most once)."""

from __future__ import annotations

from typing import Any

from edgeplane_common.bus import MessageBus, MessageEnvelope


class BusAlertPublisher:
    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus

    async def publish(self, topic: str, payload: Any) -> None:
        await self.bus.publish(topic, MessageEnvelope(payload=payload))
