"""The message-bus seam: EdgeX message envelopes over publish/subscribe/request.

`MessageBus` is the port; `edgeplane_common.bus.nats.NatsMessageBus` is the real adapter and
`edgeplane_common.bus.memory.InMemoryBus` the unit-test fake (both pass tests/contract/test_bus_contract.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Protocol

from edgeplane_common.bus.envelope import MessageEnvelope
from edgeplane_common.bus.topics import Topics, escape, subject
from edgeplane_common.errors import ServiceUnavailable

Handler = Callable[[MessageEnvelope], Awaitable["MessageEnvelope | None"]]
"""A subscription handler. For a request, the returned envelope is the reply; exceptions are logged
and never end the subscription."""

BatchHandler = Callable[[list[MessageEnvelope]], Awaitable[None]]
"""A `consume_batch` handler: every envelope of one fetch at once (never an empty list)."""

BATCH_MAX_WAIT_S = 1.0
"""`consume_batch`'s default: how long one fetch waits for its first message before it is re-issued."""


class NoResponders(ServiceUnavailable):
    """A request nobody listens to (NATS "no responders"): known at once, without waiting for the timeout.
    Callers tell "the service is not running" from "it did not answer in time" by this type."""


class Subscription(Protocol):
    async def unsubscribe(self) -> None: ...


class MessageBus(Protocol):
    async def connect(self) -> None: ...

    async def publish(self, topic: str, envelope: MessageEnvelope) -> None:
        """Fire-and-forget publish on core NATS (at-most-once)."""
        ...

    async def publish_durable(self, topic: str, envelope: MessageEnvelope) -> None:
        """Publish into a JetStream stream and wait for the server's ack (the message is stored)."""
        ...

    async def publish_durable_pipelined(self, topic: str, envelope: MessageEnvelope) -> asyncio.Future[None]:
        """As `publish_durable` without waiting for the ack, for a stream of messages (autoevents): returns
        once the message is sent, with a future that completes when the server has stored it, or fails with
        what `publish_durable` would raise (ServiceUnavailable, CommunicationError), the ack timeout
        included. Errors known at once (not connected) are raised here. Acks awaited at once are bounded:
        when the window is full, this waits for room, so a fast producer cannot outrun the server.

        Retrieve every future's outcome (await it or add a done callback that reads `exception()`);
        asyncio logs a failure nobody retrieved."""
        ...

    async def subscribe(self, topic: str, handler: Handler, *, queue: str | None = None) -> Subscription:
        """Subscribe to a subject (wildcards `*`, `>` allowed); `queue` shares messages in a group.
        A handler's returned envelope is sent as the reply when the message was a request."""
        ...

    async def request(self, topic: str, envelope: MessageEnvelope, *, timeout: float = 5.0) -> MessageEnvelope:
        """Request/reply. Raises NoResponders when nobody listens (at once), ServiceUnavailable on timeout."""
        ...

    async def ensure_stream(self, name: str, subjects: list[str], *, max_age_s: float | None = None) -> None:
        """Create or update a JetStream stream capturing `subjects`."""
        ...

    async def consume(
        self, stream: str, durable: str, topic: str, handler: Handler, *, batch: int = 100
    ) -> Subscription:
        """Durable pull consumer: each message is acked only after `handler` returns without raising,
        so a crash redelivers it. Several consumers with the same durable name share the load."""
        ...

    async def consume_batch(
        self,
        stream: str,
        durable: str,
        topic: str,
        handler: BatchHandler,
        *,
        batch: int = 256,
        max_wait: float = BATCH_MAX_WAIT_S,
    ) -> Subscription:
        """Durable pull consumer handing over whole fetches: up to `batch` messages (what is there once the
        first one is; waiting at most `max_wait` for it) go to `handler` in ONE call, in stream order. A
        message that is not an envelope is dropped (terminated, logged) without holding back the others.
        Each message is acked individually (never ack-all: members of the durable in other processes hold
        their own messages) once `handler` returns; if it raises, the whole batch is naked and redelivered
        after the bus's redelivery delay. Keep `batch` x members under the durable's MaxAckPending
        (JetStream default 1000), above which fetches stall."""
        ...

    async def close(self) -> None: ...


__all__ = [
    "BATCH_MAX_WAIT_S",
    "BatchHandler",
    "Handler",
    "MessageBus",
    "MessageEnvelope",
    "NoResponders",
    "Subscription",
    "Topics",
    "escape",
    "subject",
]
