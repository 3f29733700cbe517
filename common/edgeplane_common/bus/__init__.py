"""The message-bus seam: EdgeX message envelopes over publish/subscribe/request.

`MessageBus` is the port; `edgeplane_common.bus.nats.NatsMessageBus` is the real adapter and
`edgeplane_common.bus.memory.InMemoryBus` the unit-test fake (both pass tests/contract/test_bus_contract.py).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from edgeplane_common.bus.envelope import MessageEnvelope
from edgeplane_common.bus.guard import MessageTooLarge, UnsendableMessage
from edgeplane_common.bus.topics import Topics, escape, subject
from edgeplane_common.errors import ContractInvalid, EdgeError, ErrorKind, ServiceUnavailable

Handler = Callable[[MessageEnvelope], Awaitable["MessageEnvelope | None"]]
"""A subscription handler. For a request, the returned envelope is the reply; exceptions are logged
and never end the subscription."""

RawHandler = Callable[[bytes, str], Awaitable[None]]
"""A `subscribe_raw` handler: a message's bytes and the subject it arrived on."""

Rejections = Mapping[int, str]
"""What a batch handler may return: the positions (in the list it was given) of the messages it refuses as
poison, each with the reason. Those are dead-lettered at once; the others are acknowledged."""

BatchHandler = Callable[[list[MessageEnvelope]], Awaitable[Rejections | None]]
"""A `consume_batch` handler: every envelope of one fetch at once (never an empty list)."""

MAX_DELIVER = 5
"""Default: deliveries after which a message whose handler keeps failing (not for a transient reason) is
dead-lettered and terminated instead of being redelivered forever."""
DEADLETTER_CONSUMER = "Edgeplane-Deadletter-Consumer"
DEADLETTER_SUBJECT = "Edgeplane-Deadletter-Subject"
DEADLETTER_REASON = "Edgeplane-Deadletter-Reason"
DEADLETTER_DELIVERIES = "Edgeplane-Deadletter-Deliveries"
"""Headers of a dead-lettered copy: which durable gave up on it, where it was published, why, after how many
deliveries. The payload is the original message, byte for byte."""

_TRANSIENT_KINDS = frozenset({ErrorKind.SERVICE_UNAVAILABLE, ErrorKind.TIMEOUT})


def is_transient(err: BaseException) -> bool:
    """A failure of what the handler depends on (store down, timeout), not of the message: redelivered
    without limit, since the message will go through once the dependency is back."""
    if isinstance(err, EdgeError):
        return err.kind in _TRANSIENT_KINDS
    return isinstance(err, OSError | TimeoutError)


def poison_reason(err: BaseException, deliveries: int, max_deliver: int) -> str | None:
    """Why a message whose handler raised `err` is dead-lettered now, or None to redeliver it: a message
    the handler refuses (ContractInvalid) at once, any other non-transient failure after `max_deliver`
    deliveries, a transient one never."""
    if isinstance(err, ContractInvalid):
        return f"refused: {err}"
    if is_transient(err) or deliveries < max_deliver:
        return None
    return f"handler failed {deliveries} deliveries, last with {type(err).__name__}: {err}"


BATCH_MAX_WAIT_S = 1.0
"""`consume_batch`'s default: how long one fetch waits for its first message before it is re-issued."""


class NoResponders(ServiceUnavailable):
    """A request nobody listens to (NATS "no responders"): known at once, without waiting for the timeout.
    Callers tell "the service is not running" from "it did not answer in time" by this type."""


class Subscription(Protocol):
    async def unsubscribe(self) -> None: ...


class Consumer(Subscription, Protocol):
    """A member of a durable consumer."""

    def problem(self) -> str | None:
        """None while it fetches normally; else why not (cannot fetch, stopped)."""
        ...


class MessageBus(Protocol):
    dead_lettered: Counter[str]
    """Messages dead-lettered, per durable consumer (`stream/durable`), since the bus was created."""

    async def connect(self) -> None: ...

    def problem(self) -> str | None:
        """None while connected; else why the bus cannot be used (readiness reports it)."""
        ...

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

    async def subscribe_raw(self, topic: str, handler: RawHandler) -> Subscription:
        """As `subscribe`, for a hot path that decodes messages itself (the event stream): the handler gets
        each message's bytes and subject, no envelope model is built, and nothing is replied."""
        ...

    async def request(self, topic: str, envelope: MessageEnvelope, *, timeout: float = 5.0) -> MessageEnvelope:
        """Request/reply. Raises NoResponders when nobody listens (at once), ServiceUnavailable on timeout."""
        ...

    async def ensure_stream(
        self, name: str, subjects: list[str], *, max_age_s: float | None = None, max_bytes: int | None = None
    ) -> None:
        """Create or update a JetStream stream capturing `subjects`, keeping at most `max_age_s` seconds and
        `max_bytes` bytes of messages (oldest dropped first). For the platform's own streams (events,
        dead letters) limits not given are the bus settings' ones, so every service applies the same."""
        ...

    async def consume(self, stream: str, durable: str, topic: str, handler: Handler, *, batch: int = 100) -> Consumer:
        """Durable pull consumer: each message is acked only after `handler` returns without raising,
        so a crash redelivers it. Several consumers with the same durable name share the load.

        Poison never circulates forever: a message that is not an envelope, or that the handler refuses
        (raises ContractInvalid), is dead-lettered at once; one whose handler keeps failing for another
        non-transient reason after the bus's max deliveries. Dead-lettered means copied to
        `Topics.deadletter(stream, durable)` (stream EDGEX_DEADLETTER, headers DEADLETTER_*), counted in
        `dead_lettered`, and terminated. Transient failures (`is_transient`) are redelivered without limit."""
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
    ) -> Consumer:
        """Durable pull consumer handing over whole fetches: up to `batch` messages (what is there once the
        first one is; waiting at most `max_wait` for it) go to `handler` in ONE call, in stream order. A
        message that is not an envelope is dropped (dead-lettered, logged) without holding back the others,
        and so are those the handler returns as `Rejections`.
        Each message is acked individually (never ack-all: members of the durable in other processes hold
        their own messages) once `handler` returns. If it raises a transient error, the whole batch is naked
        and redelivered after the bus's redelivery delay; any other error, and the batch's messages are
        handed to `handler` again one at a time, so that one bad message holds back no other (each then
        treated as in `consume`). Keep `batch` x members under the durable's MaxAckPending (JetStream
        default 1000), above which fetches stall."""
        ...

    async def close(self) -> None: ...


__all__ = [
    "BATCH_MAX_WAIT_S",
    "DEADLETTER_CONSUMER",
    "DEADLETTER_DELIVERIES",
    "DEADLETTER_REASON",
    "DEADLETTER_SUBJECT",
    "MAX_DELIVER",
    "BatchHandler",
    "Consumer",
    "Handler",
    "MessageBus",
    "MessageEnvelope",
    "MessageTooLarge",
    "NoResponders",
    "RawHandler",
    "Rejections",
    "Subscription",
    "Topics",
    "UnsendableMessage",
    "escape",
    "is_transient",
    "poison_reason",
    "subject",
]
