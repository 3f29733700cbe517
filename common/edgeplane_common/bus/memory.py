"""An in-process `MessageBus` for unit tests of logic. It passes the same contract suite as
`NatsMessageBus` (tests/contract/test_bus_contract.py): NATS subject wildcards, queue groups, request/reply
with immediate "no responders", and durable streams with at-least-once ack/nak semantics.

Messages go through `encode()`/`decode()` as on the wire, so a test catches what would not serialise.
Never use it in a service: it has no persistence and no other process can see it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import Counter
from dataclasses import dataclass, field

from edgeplane_common.bus import (
    BATCH_MAX_WAIT_S,
    DEADLETTER_CONSUMER,
    DEADLETTER_DELIVERIES,
    DEADLETTER_REASON,
    DEADLETTER_SUBJECT,
    MAX_DELIVER,
    BatchHandler,
    Consumer,
    Handler,
    NoResponders,
    RawHandler,
    Subscription,
    is_transient,
    poison_reason,
)
from edgeplane_common.bus.envelope import MessageEnvelope
from edgeplane_common.bus.failures import FailureStreak
from edgeplane_common.bus.guard import (
    DEFAULT_MAX_PAYLOAD,
    check_headers,
    check_size,
    check_subject,
    sanitize_header_value,
)
from edgeplane_common.bus.nats import decode_message, dispatch, error_envelope
from edgeplane_common.bus.topics import Topics
from edgeplane_common.errors import ContractInvalid, ServiceUnavailable

logger = logging.getLogger(__name__)

_DRAIN_TIMEOUT_S = 5.0


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS matching: `*` is exactly one token, a final `>` is one or more tokens."""
    p_tokens = pattern.split(".")
    s_tokens = subject.split(".")
    for i, tok in enumerate(p_tokens):
        if tok == ">" and i == len(p_tokens) - 1:
            return len(s_tokens) > i
        if i >= len(s_tokens) or (tok != "*" and tok != s_tokens[i]):
            return False
    return len(s_tokens) == len(p_tokens)


# A queued delivery: the encoded message, its subject, and where to send the reply (None: no reply wanted).
_Delivery = tuple[bytes, str, "asyncio.Future[bytes] | None"]


class _CoreSub:
    def __init__(self, bus: InMemoryBus, pattern: str, handler: Handler, queue: str | None) -> None:
        self.bus = bus
        self.pattern = pattern
        self.queue = queue
        self._handler = handler
        self._inbox: asyncio.Queue[_Delivery] = asyncio.Queue()
        # One worker per subscription: messages are handled in order, one at a time, as nats-py does.
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"subscription {pattern}")

    def deliver(self, data: bytes, subject: str, reply: asyncio.Future[bytes] | None) -> None:
        self._inbox.put_nowait((data, subject, reply))

    async def _run(self) -> None:
        while True:
            data, subject, reply_to = await self._inbox.get()
            try:
                await self._handle(data, subject, reply_to)
            finally:
                self._inbox.task_done()

    async def _handle(self, data: bytes, subject: str, reply_to: asyncio.Future[bytes] | None) -> None:
        try:
            envelope = decode_message(data, subject)
        except ContractInvalid as err:
            logger.warning("%s", err)
            if reply_to is not None and not reply_to.done():
                reply_to.set_result(error_envelope(MessageEnvelope(), err).encode())
            return
        reply = await dispatch(self._handler, envelope, subject)
        if reply_to is not None and reply is not None and not reply_to.done():
            reply_to.set_result(reply.encode())

    async def drain(self) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_DRAIN_TIMEOUT_S):
                await self._inbox.join()
        await self.stop()

    async def stop(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task

    async def unsubscribe(self) -> None:
        with contextlib.suppress(ValueError):
            self.bus._subs.remove(self)
        await self.stop()


class _RawSub(_CoreSub):
    """A `subscribe_raw` subscription: the handler gets the bytes; nothing is replied."""

    def __init__(self, bus: InMemoryBus, pattern: str, handler: RawHandler) -> None:
        self._raw = handler
        super().__init__(bus, pattern, _no_handler, None)

    async def _handle(self, data: bytes, subject: str, reply_to: asyncio.Future[bytes] | None) -> None:
        try:
            await self._raw(data, subject)
        except Exception:
            logger.exception("handler for %s raised", subject)


async def _no_handler(envelope: MessageEnvelope) -> None:
    return None


@dataclass
class _Stored:
    seq: int
    subject: str
    data: bytes
    stored_at: float
    headers: dict[str, str] | None = None


@dataclass
class _Stream:
    name: str
    subjects: list[str]
    max_age_s: float | None
    max_bytes: int | None = None
    messages: list[_Stored] = field(default_factory=list)

    def captures(self, subject: str) -> bool:
        return any(subject_matches(p, subject) for p in self.subjects)

    def expire(self, now: float) -> None:
        if self.max_age_s:
            cutoff = now - self.max_age_s
            self.messages = [m for m in self.messages if m.stored_at >= cutoff]
        if self.max_bytes:
            # As JetStream's discard-old: the oldest go first once the stream holds too much.
            total = sum(len(m.data) for m in self.messages)
            while self.messages and total > self.max_bytes:
                total -= len(self.messages.pop(0).data)


@dataclass
class _Durable:
    """A durable consumer's state, shared by every member: which messages are acked or out for delivery."""

    stream: _Stream
    filter: str
    acked: set[int] = field(default_factory=set)
    in_flight: set[int] = field(default_factory=set)
    not_before: dict[int, float] = field(default_factory=dict)
    deliveries: Counter[int] = field(default_factory=Counter)

    def next_ready(self, now: float, limit: int = 1) -> tuple[list[_Stored], float | None]:
        """Up to `limit` messages to hand out, in stream order; if none, how long until a nak'ed message is
        due again (None: nothing is)."""
        ready: list[_Stored] = []
        wait: float | None = None
        for msg in self.stream.messages:
            if msg.seq in self.acked or msg.seq in self.in_flight or not subject_matches(self.filter, msg.subject):
                continue
            due = self.not_before.get(msg.seq, 0.0)
            if due <= now:
                ready.append(msg)
                if len(ready) >= limit:
                    break
            elif not ready:
                wait = due - now if wait is None else min(wait, due - now)
        return ready, None if ready else wait


class _Consumer:
    """A member of a durable: takes one message at a time (`consume`), or up to `batch` for a batch handler
    (`consume_batch`). Handling a message ends in an ack (True: handled, or dead-lettered as `term`) or a
    nak (False)."""

    def __init__(
        self,
        bus: InMemoryBus,
        durable: _Durable,
        handler: Handler | None,
        stream: str,
        durable_name: str,
        *,
        batch_handler: BatchHandler | None = None,
        batch: int = 1,
    ) -> None:
        self._bus = bus
        self._durable = durable
        self._handler = handler
        self._batch_handler = batch_handler
        self._batch = batch if batch_handler is not None else 1
        self._stream = stream
        self._durable_name = durable_name
        self._name = f"{stream}/{durable_name}"
        self._stopping = False
        self._busy = False
        self._streak = FailureStreak(logger, self._name)
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"consume {self._name}")

    def problem(self) -> str | None:
        return f"consumer {self._name} stopped" if self._task.done() else None

    async def _run(self) -> None:
        cond = self._bus._changed
        while not self._stopping:
            async with cond:
                msgs, wait = self._durable.next_ready(time.monotonic(), self._batch)
                if not msgs:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(wait):
                            await cond.wait()
                    continue
                self._durable.in_flight.update(m.seq for m in msgs)
                self._durable.deliveries.update(m.seq for m in msgs)
                self._busy = True
            try:
                if self._batch_handler is not None:
                    acked = await self._handle_batch(msgs)
                else:
                    acked = [await self._handle(msgs[0])]
            finally:
                self._busy = False
            async with cond:
                now = time.monotonic()
                for msg, ok in zip(msgs, acked, strict=True):
                    self._durable.in_flight.discard(msg.seq)
                    if ok:
                        self._durable.acked.add(msg.seq)
                        self._durable.not_before.pop(msg.seq, None)
                        self._durable.deliveries.pop(msg.seq, None)
                    else:
                        self._durable.not_before[msg.seq] = now + self._bus.redelivery_delay
                cond.notify_all()

    def _dead_letter(self, msg: _Stored, reason: str) -> bool:
        self._bus._dead_letter(self._stream, self._durable_name, msg, reason, self._durable.deliveries[msg.seq])
        return True  # as `term`: never redelivered

    def _failed(self, msg: _Stored, err: Exception) -> bool:
        deliveries = self._durable.deliveries[msg.seq]
        reason = poison_reason(err, deliveries, self._bus.max_deliver)
        if reason is not None:
            return self._dead_letter(msg, reason)
        limit = "" if is_transient(err) else f" (delivery {deliveries} of {self._bus.max_deliver})"
        self._streak.failed(err, f"the message on {msg.subject} will be redelivered{limit}")
        return False

    async def _handle(self, msg: _Stored) -> bool:
        assert self._handler is not None
        try:
            envelope = decode_message(msg.data, msg.subject)
        except ContractInvalid as err:
            return self._dead_letter(msg, str(err))
        try:
            await self._handler(envelope)
        except Exception as err:
            return self._failed(msg, err)
        self._streak.succeeded()
        return True

    async def _handle_batch(self, msgs: list[_Stored]) -> list[bool]:
        """Whether each message is acked: as NatsMessageBus's batch consumer decides it."""
        assert self._batch_handler is not None
        envelopes: list[MessageEnvelope] = []
        kept: list[_Stored] = []
        outcome: dict[int, bool] = {}
        for msg in msgs:
            try:
                envelopes.append(decode_message(msg.data, msg.subject))
            except ContractInvalid as err:
                outcome[msg.seq] = self._dead_letter(msg, str(err))
            else:
                kept.append(msg)
        if kept:
            try:
                rejected = await self._batch_handler(envelopes) or {}
            except Exception as err:
                if len(kept) == 1:
                    outcome[kept[0].seq] = self._failed(kept[0], err)
                elif is_transient(err):
                    self._streak.failed(err, f"the batch of {len(kept)} will be redelivered")
                    outcome.update((m.seq, False) for m in kept)
                else:
                    self._streak.failed(err, f"handling the batch's {len(kept)} messages one at a time")
                    for msg, envelope in zip(kept, envelopes, strict=True):
                        outcome[msg.seq] = await self._one(msg, envelope)
            else:
                self._streak.succeeded()
                for i, msg in enumerate(kept):
                    outcome[msg.seq] = self._dead_letter(msg, f"refused: {rejected[i]}") if i in rejected else True
        return [outcome[m.seq] for m in msgs]

    async def _one(self, msg: _Stored, envelope: MessageEnvelope) -> bool:
        assert self._batch_handler is not None
        try:
            rejected = await self._batch_handler([envelope])
        except Exception as err:
            return self._failed(msg, err)
        self._streak.succeeded()
        if rejected:
            return self._dead_letter(msg, f"refused: {next(iter(rejected.values()))}")
        return True

    async def unsubscribe(self) -> None:
        self._bus._consumers.discard(self)
        self._stopping = True
        if not self._busy:
            self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


class InMemoryBus:
    """`MessageBus` in one process. `redelivery_delay` is how long a nak'ed durable message waits."""

    def __init__(
        self,
        *,
        redelivery_delay: float = 1.0,
        request_timeout: float = 5.0,
        max_deliver: int = MAX_DELIVER,
        max_payload: int = DEFAULT_MAX_PAYLOAD,
    ) -> None:
        self.redelivery_delay = redelivery_delay
        self.max_deliver = max_deliver
        self.max_payload = max_payload
        self.dead_lettered: Counter[str] = Counter()
        self._request_timeout = request_timeout
        self._connected = False
        self._subs: list[_CoreSub] = []
        self._streams: dict[str, _Stream] = {}
        self._durables: dict[tuple[str, str], _Durable] = {}
        self._consumers: set[_Consumer] = set()
        self._seq = 0
        self._changed = asyncio.Condition()

    async def connect(self) -> None:
        self._connected = True

    def problem(self) -> str | None:
        return None if self._connected else "in-memory bus is not connected"

    async def close(self) -> None:
        self._connected = False
        for consumer in list(self._consumers):
            await consumer.unsubscribe()
        subs, self._subs = self._subs, []
        for sub in subs:
            await sub.drain()

    def _check(self) -> None:
        if not self._connected:
            raise ServiceUnavailable("in-memory bus is not connected")

    def _check_out(self, topic: str, data: bytes, headers: dict[str, str] | None = None) -> None:
        """What a default nats-server would refuse, refused the same way (see `guard`)."""
        self._check()
        check_subject(topic, wildcards=False)
        check_size(topic, len(data), check_headers(headers), self.max_payload)

    def _dead_letter(self, stream: str, durable: str, msg: _Stored, reason: str, deliveries: int) -> None:
        consumer = f"{stream}/{durable}"
        self.dead_lettered[consumer] += 1
        logger.error("dropping message on %s (consumer %s, delivery %d): %s", msg.subject, consumer, deliveries, reason)
        target = self._streams.get(Topics.DEADLETTER_STREAM)
        if target is None:
            return
        self._seq += 1
        headers = {
            DEADLETTER_CONSUMER: consumer,
            DEADLETTER_SUBJECT: sanitize_header_value(msg.subject, limit=8192),
            DEADLETTER_REASON: sanitize_header_value(reason),
            DEADLETTER_DELIVERIES: str(deliveries),
        }
        now = time.monotonic()
        target.expire(now)
        target.messages.append(_Stored(self._seq, Topics.deadletter(stream, durable), msg.data, now, headers))

    def _targets(self, subject: str) -> list[_CoreSub]:
        """Every plain subscriber, plus one member of each queue group (NATS picks one at random)."""
        plain: list[_CoreSub] = []
        groups: dict[str, list[_CoreSub]] = {}
        for sub in self._subs:
            if subject_matches(sub.pattern, subject):
                if sub.queue:
                    groups.setdefault(sub.queue, []).append(sub)
                else:
                    plain.append(sub)
        return plain + [random.choice(members) for members in groups.values()]

    async def publish(self, topic: str, envelope: MessageEnvelope) -> None:
        data = envelope.encode()
        self._check_out(topic, data)
        for sub in self._targets(topic):
            sub.deliver(data, topic, None)

    async def subscribe(self, topic: str, handler: Handler, *, queue: str | None = None) -> Subscription:
        self._check()
        check_subject(topic, wildcards=True)
        sub = _CoreSub(self, topic, handler, queue)
        self._subs.append(sub)
        return sub

    async def subscribe_raw(self, topic: str, handler: RawHandler) -> Subscription:
        self._check()
        check_subject(topic, wildcards=True)
        sub = _RawSub(self, topic, handler)
        self._subs.append(sub)
        return sub

    async def request(
        self,
        topic: str,
        envelope: MessageEnvelope,
        *,
        timeout: float | None = None,  # the MessageBus signature
    ) -> MessageEnvelope:
        data = envelope.encode()
        self._check_out(topic, data)
        targets = self._targets(topic)
        if not targets:
            raise NoResponders(f"no service is listening on {topic}")
        wait = self._request_timeout if timeout is None else timeout
        reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        for sub in targets:
            sub.deliver(data, topic, reply)
        try:
            async with asyncio.timeout(wait):
                raw = await reply
        except TimeoutError as err:
            raise ServiceUnavailable(f"no reply on {topic} within {wait:g}s") from err
        return decode_message(raw, "_INBOX.memory")

    async def ensure_stream(
        self, name: str, subjects: list[str], *, max_age_s: float | None = None, max_bytes: int | None = None
    ) -> None:
        self._check()
        stream = self._streams.get(name)
        if stream is None:
            self._streams[name] = _Stream(name, list(subjects), max_age_s, max_bytes)
        else:
            stream.subjects = list(subjects)
            stream.max_age_s = max_age_s
            stream.max_bytes = max_bytes

    async def publish_durable(self, topic: str, envelope: MessageEnvelope) -> None:
        data = envelope.encode()
        self._check_out(topic, data)
        stream = next((s for s in self._streams.values() if s.captures(topic)), None)
        if stream is None:
            raise ServiceUnavailable(f"no JetStream stream captures {topic}")
        now = time.monotonic()
        async with self._changed:
            self._seq += 1
            stream.expire(now)
            stream.messages.append(_Stored(self._seq, topic, data, now))
            self._changed.notify_all()
        # A JetStream publish is also an ordinary message on its subject (no reply expected).
        for sub in self._targets(topic):
            sub.deliver(data, topic, None)

    async def publish_durable_pipelined(self, topic: str, envelope: MessageEnvelope) -> asyncio.Future[None]:
        self._check_out(topic, envelope.encode())  # refused at once, as NatsMessageBus does
        result: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        try:
            await self.publish_durable(topic, envelope)
        except ServiceUnavailable as err:
            result.set_exception(err)  # as JetStream reports it: through the ack
        else:
            result.set_result(None)
        return result

    def _durable(self, stream: str, durable: str, topic: str) -> _Durable:
        self._check()
        check_subject(topic, wildcards=True)
        found = self._streams.get(stream)
        if found is None:
            raise ServiceUnavailable(f"stream {stream} does not exist")
        if Topics.DEADLETTER_STREAM not in self._streams:
            self._streams[Topics.DEADLETTER_STREAM] = _Stream(Topics.DEADLETTER_STREAM, [Topics.DEADLETTER_ALL], None)
        # Like a JetStream durable: the first member fixes the filter, later members share its state.
        return self._durables.setdefault((stream, durable), _Durable(found, topic))

    async def consume(self, stream: str, durable: str, topic: str, handler: Handler, *, batch: int = 100) -> Consumer:
        state = self._durable(stream, durable, topic)
        consumer = _Consumer(self, state, handler, stream, durable)
        self._consumers.add(consumer)
        return consumer

    async def consume_batch(
        self,
        stream: str,
        durable: str,
        topic: str,
        handler: BatchHandler,
        *,
        batch: int = 256,
        max_wait: float = BATCH_MAX_WAIT_S,  # the MessageBus signature: what is ready is handed over at once
    ) -> Consumer:
        state = self._durable(stream, durable, topic)
        consumer = _Consumer(self, state, None, stream, durable, batch_handler=handler, batch=batch)
        self._consumers.add(consumer)
        return consumer


__all__ = ["InMemoryBus", "subject_matches"]
