"""The MessageBus contract: every implementation (NATS against a real nats-server, and the in-memory fake)
must pass the same tests."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable

import nats
import pytest
from nats.js.api import AckPolicy, StorageType

from edgeplane_common.bus import (
    DEADLETTER_CONSUMER,
    DEADLETTER_DELIVERIES,
    DEADLETTER_REASON,
    DEADLETTER_SUBJECT,
    MAX_DELIVER,
    MessageBus,
    MessageEnvelope,
    MessageTooLarge,
    NoResponders,
    Topics,
    UnsendableMessage,
)
from edgeplane_common.bus.guard import max_subject_bytes
from edgeplane_common.bus.memory import InMemoryBus, _Stored
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.bus.topics import escape, subject, unescape
from edgeplane_common.errors import ContractInvalid, NotFound, ServiceUnavailable
from edgeplane_common.settings import NatsSettings

REDELIVERY_DELAY = 0.1


@pytest.fixture(params=["nats", "memory"])
async def any_bus(request: pytest.FixtureRequest) -> AsyncIterator[MessageBus]:
    bus: MessageBus
    if request.param == "nats":
        url = request.getfixturevalue("nats_url")
        bus = NatsMessageBus(NatsSettings(url=url), name="contract", redelivery_delay=REDELIVERY_DELAY)
    else:
        bus = InMemoryBus(redelivery_delay=REDELIVERY_DELAY)
    async with asyncio.timeout(10):
        await bus.connect()
    yield bus
    await bus.close()


@pytest.fixture
def prefix() -> str:
    """A subject prefix (and stream-name seed) no other test uses: all tests share one nats-server."""
    return f"t{uuid.uuid4().hex[:12]}"


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if check():
                return
            await asyncio.sleep(0.01)


def env(payload: object) -> MessageEnvelope:
    return MessageEnvelope(payload=payload, request_id=str(uuid.uuid4()))


class Collector:
    """A handler that records what it receives."""

    def __init__(self) -> None:
        self.received: list[MessageEnvelope] = []

    async def __call__(self, envelope: MessageEnvelope) -> None:
        self.received.append(envelope)

    @property
    def payloads(self) -> list[object]:
        return [e.payload for e in self.received]


# -- publish / subscribe ------------------------------------------------------------------------------------


async def test_publish_subscribe_delivers_envelope(any_bus: MessageBus, prefix: str) -> None:
    got = Collector()
    await any_bus.subscribe(f"{prefix}.a", got)
    sent = [env({"n": i}) for i in range(3)]
    for e in sent:
        await any_bus.publish(f"{prefix}.a", e)

    await eventually(lambda: len(got.received) == 3)
    assert got.payloads == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert [e.correlation_id for e in got.received] == [e.correlation_id for e in sent]
    assert [e.request_id for e in got.received] == [e.request_id for e in sent]
    assert all(e.received_topic == f"{prefix}.a" for e in got.received)


async def test_wildcards_match_like_nats(any_bus: MessageBus, prefix: str) -> None:
    star, tail = Collector(), Collector()
    await any_bus.subscribe(f"{prefix}.*.x", star)
    await any_bus.subscribe(f"{prefix}.>", tail)

    for topic in (f"{prefix}.a.x", f"{prefix}.b.y", f"{prefix}.a.x.z", prefix):
        await any_bus.publish(topic, env(topic))
    # Delivery is ordered per subscription, so once the sentinel arrived everything before it has too.
    await any_bus.publish(f"{prefix}.end.x", env("end"))
    await eventually(lambda: "end" in star.payloads and "end" in tail.payloads)

    assert star.payloads == [f"{prefix}.a.x", "end"]
    # `>` needs at least one more token: the bare prefix is not matched.
    assert tail.payloads == [f"{prefix}.a.x", f"{prefix}.b.y", f"{prefix}.a.x.z", "end"]
    assert tail.received[2].received_topic == f"{prefix}.a.x.z"


async def test_escaped_names_stay_one_token(any_bus: MessageBus, prefix: str) -> None:
    service, profile, device, source = f"{prefix} svc.1", "my profile", "dev.a b", "temp*>%"
    got = Collector()
    # One `*` per name: matches only if every escaped name is exactly one subject token.
    await any_bus.subscribe(subject("edgex", "events", "device", escape(service), "*", "*", "*"), got)
    await any_bus.publish(Topics.events(service, profile, device, source), env("reading"))

    await eventually(lambda: len(got.received) == 1)
    topic = got.received[0].received_topic
    assert topic is not None
    tokens = topic.split(".")
    assert len(tokens) == 7
    assert [unescape(t) for t in tokens[3:]] == [service, profile, device, source]


async def test_queue_group_delivers_each_message_to_one_member(any_bus: MessageBus, prefix: str) -> None:
    a, b, everyone = Collector(), Collector(), Collector()
    await any_bus.subscribe(f"{prefix}.work", a, queue="workers")
    await any_bus.subscribe(f"{prefix}.work", b, queue="workers")
    await any_bus.subscribe(f"{prefix}.work", everyone)

    n = 40
    for i in range(n):
        await any_bus.publish(f"{prefix}.work", env(i))

    await eventually(lambda: len(a.received) + len(b.received) == n and len(everyone.received) == n)
    await asyncio.sleep(0.1)  # a duplicate delivery would show up by now
    assert sorted(a.payloads + b.payloads) == list(range(n))  # type: ignore[type-var]
    assert not set(a.payloads) & set(b.payloads)
    # The group shares the load (one member getting nothing of 40 has a probability of ~1e-12).
    assert a.received
    assert b.received
    assert everyone.payloads == list(range(n))


async def test_unsubscribe_stops_delivery(any_bus: MessageBus, prefix: str) -> None:
    gone, stays = Collector(), Collector()
    sub = await any_bus.subscribe(f"{prefix}.s", gone)
    await any_bus.subscribe(f"{prefix}.s", stays)
    await any_bus.publish(f"{prefix}.s", env(1))
    await eventually(lambda: len(gone.received) == 1 and len(stays.received) == 1)

    await sub.unsubscribe()
    await any_bus.publish(f"{prefix}.s", env(2))
    await eventually(lambda: len(stays.received) == 2)
    assert gone.payloads == [1]


async def test_raw_subscription_hands_over_the_bytes_and_survives_a_failing_handler(
    any_bus: MessageBus, prefix: str
) -> None:
    got: list[tuple[bytes, str]] = []

    async def handler(data: bytes, subject: str) -> None:
        got.append((data, subject))
        if len(got) == 1:
            raise RuntimeError("a bug in the handler")

    await any_bus.subscribe_raw(f"{prefix}.raw.>", handler)
    first, second = env(1), env(2)
    await any_bus.publish(f"{prefix}.raw.a", first)
    await any_bus.publish(f"{prefix}.raw.b", second)
    await eventually(lambda: len(got) == 2)
    assert [(MessageEnvelope.decode(d).payload, s) for d, s in got] == [(1, f"{prefix}.raw.a"), (2, f"{prefix}.raw.b")]


# -- request / reply ------------------------------------------------------------------------------------


async def test_request_reply_carries_correlation_id(any_bus: MessageBus, prefix: str) -> None:
    async def echo(request: MessageEnvelope) -> MessageEnvelope:
        return request.reply({"echo": request.payload})

    await any_bus.subscribe(f"{prefix}.cmd", echo)
    request = env({"value": 42})
    reply = await any_bus.request(f"{prefix}.cmd", request, timeout=5)

    assert reply.payload == {"echo": {"value": 42}}
    assert reply.error_code == 0
    assert reply.correlation_id == request.correlation_id
    assert reply.request_id == request.request_id


async def test_reply_gets_request_correlation_id_even_if_handler_forgets(any_bus: MessageBus, prefix: str) -> None:
    async def careless(request: MessageEnvelope) -> MessageEnvelope:
        return MessageEnvelope(payload="fresh envelope")

    await any_bus.subscribe(f"{prefix}.cmd", careless, queue="svc")
    request = env(None)
    reply = await any_bus.request(f"{prefix}.cmd", request, timeout=5)
    assert reply.payload == "fresh envelope"
    assert reply.correlation_id == request.correlation_id


async def test_request_without_responders_fails_fast(any_bus: MessageBus, prefix: str) -> None:
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable, match=f"no service is listening on {prefix}.nobody"):
        await any_bus.request(f"{prefix}.nobody", env(None), timeout=5)
    # Far below the 5 s timeout: the bus knows at once that nobody listens.
    assert time.monotonic() - started < 1.0


async def test_nobody_listening_is_told_apart_from_no_reply_by_type(any_bus: MessageBus, prefix: str) -> None:
    with pytest.raises(NoResponders):
        await any_bus.request(f"{prefix}.nobody", env(None), timeout=5)
    await any_bus.subscribe(f"{prefix}.silent", Collector())
    with pytest.raises(ServiceUnavailable) as info:
        await any_bus.request(f"{prefix}.silent", env(None), timeout=0.2)
    assert not isinstance(info.value, NoResponders)


async def test_request_without_reply_times_out(any_bus: MessageBus, prefix: str) -> None:
    got = Collector()  # returns None: no reply
    await any_bus.subscribe(f"{prefix}.silent", got)
    with pytest.raises(ServiceUnavailable, match=r"no reply on .*silent within 0.2s"):
        await any_bus.request(f"{prefix}.silent", env(None), timeout=0.2)
    assert len(got.received) == 1


async def test_handler_errors_become_error_replies(any_bus: MessageBus, prefix: str) -> None:
    async def failing(request: MessageEnvelope) -> MessageEnvelope:
        if request.payload == "missing":
            raise NotFound("device dev-9 not found")
        raise RuntimeError("driver exploded")

    await any_bus.subscribe(f"{prefix}.cmd", failing)
    request = env("missing")
    not_found = await any_bus.request(f"{prefix}.cmd", request, timeout=5)
    assert not_found.error_code == 1
    assert not_found.payload == {"message": "device dev-9 not found", "statusCode": 404}
    assert not_found.correlation_id == request.correlation_id

    crashed = await any_bus.request(f"{prefix}.cmd", env("other"), timeout=5)
    assert crashed.error_code == 1
    assert crashed.payload["statusCode"] == 500
    assert "driver exploded" in crashed.payload["message"]


async def test_handler_exception_does_not_kill_subscription(
    any_bus: MessageBus, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[object] = []

    async def flaky(envelope: MessageEnvelope) -> MessageEnvelope:
        seen.append(envelope.payload)
        if envelope.payload == "boom":
            raise ValueError("bad value")
        return envelope.reply("ok")

    await any_bus.subscribe(f"{prefix}.f", flaky)
    await any_bus.publish(f"{prefix}.f", env("boom"))
    await any_bus.publish(f"{prefix}.f", env("after"))
    await eventually(lambda: seen == ["boom", "after"])

    reply = await any_bus.request(f"{prefix}.f", env("still there?"), timeout=5)
    assert reply.payload == "ok"
    assert any(f"{prefix}.f" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_not_connected_bus_refuses(prefix: str, nats_url: str) -> None:
    for bus in (NatsMessageBus(NatsSettings(url=nats_url), name="never-connected"), InMemoryBus()):
        with pytest.raises(ServiceUnavailable):
            await bus.publish(f"{prefix}.x", env(None))
        with pytest.raises(ServiceUnavailable):
            await bus.publish_durable_pipelined(f"{prefix}.x", env(None))


# -- durable streams ------------------------------------------------------------------------------------


async def test_durable_publish_and_consume_with_ack(any_bus: MessageBus, prefix: str) -> None:
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.>"])
    for i in range(5):
        await any_bus.publish_durable(f"{prefix}.ev.{i}", env(i))

    got = Collector()
    sub = await any_bus.consume(stream, "worker", f"{prefix}.>", got, batch=2)
    await eventually(lambda: len(got.received) == 5)
    await asyncio.sleep(3 * REDELIVERY_DELAY)  # nothing comes twice
    assert got.payloads == [0, 1, 2, 3, 4]
    assert got.received[3].received_topic == f"{prefix}.ev.3"
    await sub.unsubscribe()

    # The durable remembers what was acked: a new member only gets what came after.
    await any_bus.publish_durable(f"{prefix}.ev.5", env(5))
    again = Collector()
    sub = await any_bus.consume(stream, "worker", f"{prefix}.>", again)
    await eventually(lambda: len(again.received) == 1)
    assert again.payloads == [5]
    await sub.unsubscribe()

    # A consumer with another durable name starts from the beginning of the stream.
    other = Collector()
    await any_bus.consume(stream, "auditor", f"{prefix}.>", other)
    await eventually(lambda: len(other.received) == 6)
    assert other.payloads == [0, 1, 2, 3, 4, 5]


async def test_consumer_filter_subject(any_bus: MessageBus, prefix: str) -> None:
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.>"])
    await any_bus.publish_durable(f"{prefix}.a.1", env("a1"))
    await any_bus.publish_durable(f"{prefix}.b.1", env("b1"))
    await any_bus.publish_durable(f"{prefix}.a.2", env("a2"))

    got = Collector()
    await any_bus.consume(stream, "only-a", f"{prefix}.a.*", got)
    await eventually(lambda: len(got.received) == 2)
    await asyncio.sleep(0.1)
    assert got.payloads == ["a1", "a2"]


async def test_members_of_a_durable_share_the_messages(any_bus: MessageBus, prefix: str) -> None:
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.>"])
    a, b = Collector(), Collector()
    await any_bus.consume(stream, "pool", f"{prefix}.>", a, batch=1)
    await any_bus.consume(stream, "pool", f"{prefix}.>", b, batch=1)
    n = 20
    for i in range(n):
        await any_bus.publish_durable(f"{prefix}.e", env(i))

    await eventually(lambda: len(a.received) + len(b.received) == n)
    await asyncio.sleep(3 * REDELIVERY_DELAY)
    assert sorted(a.payloads + b.payloads) == list(range(n))  # type: ignore[type-var]


async def test_failed_message_is_redelivered_until_handled(any_bus: MessageBus, prefix: str) -> None:
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.>"])
    attempts: Counter[object] = Counter()
    handled: list[object] = []

    async def flaky(envelope: MessageEnvelope) -> None:
        attempts[envelope.payload] += 1
        if envelope.payload == "b" and attempts["b"] == 1:
            raise ConnectionError("store unavailable")
        handled.append(envelope.payload)

    await any_bus.consume(stream, "flaky", f"{prefix}.>", flaky)
    for p in ("a", "b", "c"):
        await any_bus.publish_durable(f"{prefix}.e", env(p))

    await eventually(lambda: sorted(handled) == ["a", "b", "c"])  # type: ignore[type-var]
    await asyncio.sleep(3 * REDELIVERY_DELAY)
    assert attempts == {"a": 1, "b": 2, "c": 1}  # redelivered once after the nak, then acked
    assert sorted(handled) == ["a", "b", "c"]  # type: ignore[type-var]


async def test_durable_publish_without_stream_fails(any_bus: MessageBus, prefix: str) -> None:
    with pytest.raises(ServiceUnavailable, match="no JetStream stream captures"):
        await any_bus.publish_durable(f"{prefix}.nowhere", env(None))


async def test_pipelined_durable_publishes_are_all_stored_in_order(any_bus: MessageBus, prefix: str) -> None:
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.>"])

    async def answers(envelope: MessageEnvelope) -> MessageEnvelope:
        return envelope.reply("not an ack")  # must never be taken for JetStream's ack

    await any_bus.subscribe(f"{prefix}.>", answers)
    n = 700  # more than the window of acks a bus keeps outstanding: the producer is held back, never fails
    acks = [await any_bus.publish_durable_pipelined(f"{prefix}.e.{i % 3}", env(i)) for i in range(n)]
    async with asyncio.timeout(10):
        assert await asyncio.gather(*acks) == [None] * n  # stored

    got = Collector()
    await any_bus.consume(stream, "d", f"{prefix}.>", got, batch=100)
    await eventually(lambda: len(got.received) == n)
    assert got.payloads == list(range(n))
    assert got.received[5].received_topic == f"{prefix}.e.2"


async def test_pipelined_publish_without_stream_fails_through_its_ack(any_bus: MessageBus, prefix: str) -> None:
    ack = await any_bus.publish_durable_pipelined(f"{prefix}.nowhere", env(None))
    with pytest.raises(ServiceUnavailable, match="no JetStream stream captures"):
        async with asyncio.timeout(5):
            await ack


async def test_consume_unknown_stream_fails(any_bus: MessageBus, prefix: str) -> None:
    with pytest.raises(ServiceUnavailable, match="does not exist"):
        await any_bus.consume(f"S{prefix}", "d", f"{prefix}.>", Collector())


async def test_durable_messages_reach_core_subscribers_but_are_not_answered(any_bus: MessageBus, prefix: str) -> None:
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.>"])

    async def answers(envelope: MessageEnvelope) -> MessageEnvelope:
        # Would be sent to the JetStream ack inbox if the bus answered durable publishes.
        return envelope.reply("not an ack")

    watcher = Collector()
    await any_bus.subscribe(f"{prefix}.>", answers)
    await any_bus.subscribe(f"{prefix}.>", watcher)
    for i in range(10):
        await any_bus.publish_durable(f"{prefix}.e", env(i))  # each awaits the stream's real ack

    got = Collector()
    await any_bus.consume(stream, "d", f"{prefix}.>", got)
    await eventually(lambda: len(got.received) == 10 and len(watcher.received) == 10)
    assert got.payloads == list(range(10))
    assert watcher.payloads == list(range(10))


async def test_ensure_stream_is_idempotent_and_updates(any_bus: MessageBus, prefix: str) -> None:
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.a.>"])
    await any_bus.ensure_stream(stream, [f"{prefix}.a.>"])
    with pytest.raises(ServiceUnavailable):
        await any_bus.publish_durable(f"{prefix}.b.1", env("b"))

    await any_bus.ensure_stream(stream, [f"{prefix}.a.>", f"{prefix}.b.>"], max_age_s=3600)
    await any_bus.publish_durable(f"{prefix}.b.1", env("b"))
    got = Collector()
    await any_bus.consume(stream, "d", f"{prefix}.>", got)
    await eventually(lambda: got.payloads == ["b"])


# -- NATS specifics -----------------------------------------------------------------------------------------


async def test_nats_acks_reach_the_server(bus: NatsMessageBus, nats_url: str, prefix: str) -> None:
    stream = f"S{prefix}"
    await bus.ensure_stream(stream, [f"{prefix}.>"])
    for i in range(4):
        await bus.publish_durable(f"{prefix}.e", env(i))
    got = Collector()
    await bus.consume(stream, "acker", f"{prefix}.>", got)
    await eventually(lambda: len(got.received) == 4)

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        info = await js.stream_info(stream)
        assert info.config.storage == StorageType.FILE

        # Acks are fire-and-forget publishes: give the server a moment to count them.
        async with asyncio.timeout(5):
            while True:
                ci = await js.consumer_info(stream, "acker")
                if ci.num_ack_pending == 0 and ci.num_pending == 0:
                    break
                await asyncio.sleep(0.05)
        assert ci.delivered.stream_seq == 4
    finally:
        await nc.close()


async def test_nats_pipelined_publish_times_out_without_an_ack(nats_url: str, prefix: str) -> None:
    # No stream captures the subject, but a core subscriber does: the server has a responder, so it does not
    # answer "no responders", and our subscribers never answer durable publishes. No ack ever comes.
    bus = NatsMessageBus(NatsSettings(url=nats_url, request_timeout=0.3), name="no-ack")
    await bus.connect()
    try:
        watcher = Collector()
        await bus.subscribe(f"{prefix}.>", watcher)
        ack = await bus.publish_durable_pipelined(f"{prefix}.e", env(1))
        with pytest.raises(ServiceUnavailable, match="did not acknowledge"):
            async with asyncio.timeout(5):
                await ack
        await eventually(lambda: watcher.payloads == [1])
        # The window slot came back: more publishes go through (and time out the same way).
        more = [await bus.publish_durable_pipelined(f"{prefix}.e", env(i)) for i in range(3)]
        results = await asyncio.gather(*more, return_exceptions=True)
        assert all(isinstance(r, ServiceUnavailable) for r in results)
    finally:
        await bus.close()


# -- batch consumers ------------------------------------------------------------------------------------------


class BatchCollector:
    """A batch handler that records each batch it receives; `fail` batches raise before being recorded."""

    def __init__(self, fail: int = 0) -> None:
        self.batches: list[list[MessageEnvelope]] = []
        self.calls = 0
        self.fail = fail

    async def __call__(self, envelopes: list[MessageEnvelope]) -> None:
        self.calls += 1
        if self.fail > 0:
            self.fail -= 1
            raise ConnectionError("store unavailable")
        self.batches.append(envelopes)

    @property
    def payloads(self) -> list[object]:
        return [e.payload for batch in self.batches for e in batch]


async def publish_raw(bus: MessageBus, topic: str, data: bytes) -> None:
    """Put bytes that are not an envelope into the stream capturing `topic` (as a foreign publisher could)."""
    if isinstance(bus, NatsMessageBus):
        await bus._jetstream().publish(topic, data)
        return
    assert isinstance(bus, InMemoryBus)
    stream = next(s for s in bus._streams.values() if s.captures(topic))
    async with bus._changed:
        bus._seq += 1
        stream.messages.append(_Stored(bus._seq, topic, data, time.monotonic()))
        bus._changed.notify_all()


async def test_consume_batch_hands_over_whole_fetches(any_bus: MessageBus, prefix: str) -> None:
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.>"])
    n = 10
    for i in range(n):
        await any_bus.publish_durable(f"{prefix}.ev.{i}", env(i))

    got = BatchCollector()
    await any_bus.consume_batch(stream, "batcher", f"{prefix}.>", got, batch=4, max_wait=0.5)
    await eventually(lambda: len(got.payloads) == n)
    await asyncio.sleep(3 * REDELIVERY_DELAY)  # nothing comes twice
    assert got.payloads == list(range(n))
    assert all(1 <= len(b) <= 4 for b in got.batches)
    assert len(got.batches) < n, "a backlog is handed over several messages at a time"
    assert got.batches[0][3].received_topic == f"{prefix}.ev.3"

    # Acked: a new member of the durable gets only what comes next.
    await any_bus.publish_durable(f"{prefix}.ev.{n}", env(n))
    await eventually(lambda: got.payloads[-1:] == [n])
    assert got.payloads == list(range(n + 1))


async def test_consume_batch_redelivers_a_failed_batch_whole(any_bus: MessageBus, prefix: str) -> None:
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.>"])
    for i in range(3):
        await any_bus.publish_durable(f"{prefix}.e", env(i))

    got = BatchCollector(fail=1)
    await any_bus.consume_batch(stream, "flaky", f"{prefix}.>", got, batch=10, max_wait=0.5)
    await eventually(lambda: sorted(got.payloads) == [0, 1, 2])  # type: ignore[type-var]
    await asyncio.sleep(3 * REDELIVERY_DELAY)
    assert got.calls >= 2  # the first attempt raised: nacked, then redelivered
    assert sorted(got.payloads) == [0, 1, 2]  # type: ignore[type-var]  # acked once handled: no more


async def test_consume_batch_acks_only_after_the_handler_returns(any_bus: MessageBus, prefix: str) -> None:
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.>"])
    for i in range(3):
        await any_bus.publish_durable(f"{prefix}.e", env(i))
    release = asyncio.Event()
    seen: list[object] = []

    async def slow(envelopes: list[MessageEnvelope]) -> None:
        seen.extend(e.payload for e in envelopes)
        await release.wait()

    sub = await any_bus.consume_batch(stream, "slow", f"{prefix}.>", slow, batch=10, max_wait=0.5)
    await eventually(lambda: len(seen) == 3)
    # While the handler holds them, the messages are neither acked nor given to another member.
    other = BatchCollector()
    await any_bus.consume_batch(stream, "slow", f"{prefix}.>", other, batch=10, max_wait=0.2)
    await asyncio.sleep(3 * REDELIVERY_DELAY)
    assert other.payloads == []
    release.set()
    await sub.unsubscribe()
    await any_bus.publish_durable(f"{prefix}.e", env(3))
    await eventually(lambda: other.payloads == [3])
    await asyncio.sleep(3 * REDELIVERY_DELAY)
    assert other.payloads == [3]  # 0..2 were acked when the handler returned


async def test_consume_batch_drops_a_poison_message_and_keeps_the_rest(
    any_bus: MessageBus, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.>"])
    await any_bus.publish_durable(f"{prefix}.e", env(0))
    await publish_raw(any_bus, f"{prefix}.bad", b"\xff not an envelope")
    await any_bus.publish_durable(f"{prefix}.e", env(1))

    got = BatchCollector()
    await any_bus.consume_batch(stream, "d", f"{prefix}.>", got, batch=10, max_wait=0.5)
    await eventually(lambda: len(got.payloads) == 2)
    await asyncio.sleep(3 * REDELIVERY_DELAY)
    assert got.payloads == [0, 1]
    assert any(f"dropping message on {prefix}.bad" in r.getMessage() for r in caplog.records)


async def test_consume_batch_unknown_stream_fails(any_bus: MessageBus, prefix: str) -> None:
    with pytest.raises(ServiceUnavailable, match="does not exist"):
        await any_bus.consume_batch(f"S{prefix}", "d", f"{prefix}.>", BatchCollector())


async def test_nats_batch_acks_reach_the_server(bus: NatsMessageBus, nats_url: str, prefix: str) -> None:
    stream = f"S{prefix}"
    await bus.ensure_stream(stream, [f"{prefix}.>"])
    for i in range(5):
        await bus.publish_durable(f"{prefix}.e", env(i))
    release = asyncio.Event()

    async def held(envelopes: list[MessageEnvelope]) -> None:
        await release.wait()

    await bus.consume_batch(stream, "batch-acker", f"{prefix}.>", held, batch=10, max_wait=0.5)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        async with asyncio.timeout(5):
            while True:
                ci = await js.consumer_info(stream, "batch-acker")
                if ci.num_ack_pending == 5:
                    break
                await asyncio.sleep(0.05)
        release.set()
        async with asyncio.timeout(5):
            while True:
                ci = await js.consumer_info(stream, "batch-acker")
                if ci.num_ack_pending == 0 and ci.num_pending == 0:
                    break
                await asyncio.sleep(0.05)
        assert ci.config.ack_policy == AckPolicy.EXPLICIT
    finally:
        await nc.close()


# -- what the server would refuse, and poison -----------------------------------------------------------------


async def test_refuses_what_a_nats_server_would_close_the_connection_for(any_bus: MessageBus, prefix: str) -> None:
    """A subject past the control line, whitespace or an empty token, a payload past max_payload: a 4xx
    error for the caller, nothing sent, and the bus keeps working for everyone else."""
    got = Collector()
    await any_bus.subscribe(f"{prefix}.>", got)
    long_name = "x" * 10_000
    for bad in (f"{prefix}.{long_name}", f"{prefix}.a b", f"{prefix}..a", f"{prefix}.a\r\nPUB x 1", ""):
        with pytest.raises(UnsendableMessage) as caught:
            await any_bus.publish(bad, env("bad"))
        assert caught.value.status_code == 400
        with pytest.raises(UnsendableMessage):
            await any_bus.request(bad, env("bad"), timeout=1)
    with pytest.raises(UnsendableMessage, match="wildcards"):
        await any_bus.publish(f"{prefix}.*", env("bad"))
    with pytest.raises(UnsendableMessage):
        await any_bus.subscribe(f"{prefix}.{long_name}.>", got)
    with pytest.raises(UnsendableMessage):
        await any_bus.subscribe(f"{prefix}.>.a", got)
    with pytest.raises(MessageTooLarge) as too_large:
        await any_bus.publish(f"{prefix}.big", env("y" * (2 * 1024 * 1024)))
    assert too_large.value.status_code == 413
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.>"])
    with pytest.raises(UnsendableMessage):
        await any_bus.publish_durable(f"{prefix}.{long_name}", env("bad"))
    with pytest.raises(UnsendableMessage):
        await any_bus.publish_durable_pipelined(f"{prefix}.{long_name}", env("bad"))

    # The longest subject allowed goes through, core and durable (the server also delivers it to a consumer).
    longest = f"{prefix}." + "y" * (max_subject_bytes() - len(prefix) - 1)
    await any_bus.publish(longest, env("longest"))
    await any_bus.publish_durable(longest, env("durable"))
    durable = Collector()
    await any_bus.consume(stream, "d", f"{prefix}.>", durable)
    # The stream captures the core publish too (nats-py may flush it after the stream exists): either order.
    await eventually(lambda: "longest" in got.payloads and "durable" in got.payloads and "durable" in durable.payloads)
    assert any_bus.problem() is None


async def dead_letters(bus: MessageBus, stream: str, durable: str) -> list[tuple[dict[str, str], bytes]]:
    """(headers, data) of what `durable` put in the dead-letter stream."""
    where = Topics.deadletter(stream, durable)
    if isinstance(bus, InMemoryBus):
        kept = bus._streams[Topics.DEADLETTER_STREAM].messages
        return [(m.headers or {}, m.data) for m in kept if m.subject == where]
    assert isinstance(bus, NatsMessageBus)
    js = bus._jetstream()
    out = []
    sub = await js.subscribe(where, ordered_consumer=True)
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=0.5)
            except nats.errors.TimeoutError:
                return out
            out.append((dict(msg.headers or {}), msg.data))
    finally:
        await sub.unsubscribe()


class Failing:
    """A handler that always raises `error` and counts its calls."""

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.calls = 0

    async def __call__(self, envelope: MessageEnvelope) -> None:
        self.calls += 1
        raise self.error


async def test_a_message_that_keeps_failing_is_dead_lettered_after_max_deliveries(
    any_bus: MessageBus, prefix: str
) -> None:
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.>"])
    await any_bus.publish_durable(f"{prefix}.poison", env("poison"))
    handler = Failing(RuntimeError("boom"))
    await any_bus.consume(stream, "d", f"{prefix}.>", handler)
    await eventually(lambda: any_bus.dead_lettered[f"{stream}/d"] == 1, timeout=10)
    await asyncio.sleep(5 * REDELIVERY_DELAY)
    assert handler.calls == MAX_DELIVER, "terminated after the last allowed delivery, never redelivered again"
    [(headers, data)] = await dead_letters(any_bus, stream, "d")
    assert MessageEnvelope.decode(data).payload == "poison"
    assert headers[DEADLETTER_SUBJECT] == f"{prefix}.poison"
    assert headers[DEADLETTER_CONSUMER] == f"{stream}/d"
    assert headers[DEADLETTER_DELIVERIES] == str(MAX_DELIVER)
    assert "RuntimeError: boom" in headers[DEADLETTER_REASON]


async def test_a_refused_message_is_dead_lettered_at_once_and_a_transient_failure_never(
    any_bus: MessageBus, prefix: str
) -> None:
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.>"])
    await any_bus.publish_durable(f"{prefix}.refused", env("refused"))
    refusing = Failing(ContractInvalid("not an event"))
    await any_bus.consume(stream, "refusing", f"{prefix}.refused", refusing)
    await eventually(lambda: any_bus.dead_lettered[f"{stream}/refusing"] == 1)
    assert refusing.calls == 1

    await any_bus.publish_durable(f"{prefix}.down", env("down"))
    store_down = Failing(ServiceUnavailable("store down"))
    sub = await any_bus.consume(stream, "transient", f"{prefix}.down", store_down)
    await eventually(lambda: store_down.calls > MAX_DELIVER + 1, timeout=10)
    assert any_bus.dead_lettered[f"{stream}/transient"] == 0, "a store outage is ridden out, not dead-lettered"
    await sub.unsubscribe()


async def test_consume_batch_isolates_poison_and_dead_letters_rejections(any_bus: MessageBus, prefix: str) -> None:
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.>"])
    for payload in (0, "refuse", 1, "crash", 2):
        await any_bus.publish_durable(f"{prefix}.e", env(payload))
    stored: list[object] = []
    calls = Counter[str]()

    async def handler(envelopes: list[MessageEnvelope]) -> dict[int, str] | None:
        payloads = [e.payload for e in envelopes]
        if "crash" in payloads:
            calls["crash"] += 1
            raise ValueError("cannot handle this one")  # not transient: which message is to blame?
        stored.extend(p for p in payloads if p != "refuse")
        return {payloads.index("refuse"): "not valid"} if "refuse" in payloads else None

    await any_bus.consume_batch(stream, "d", f"{prefix}.>", handler, batch=10, max_wait=0.5)
    await eventually(lambda: any_bus.dead_lettered[f"{stream}/d"] == 2, timeout=10)
    await asyncio.sleep(5 * REDELIVERY_DELAY)
    assert sorted(stored) == [0, 1, 2], "the good messages are stored once, not held back by the bad ones"  # type: ignore[type-var]
    assert any_bus.dead_lettered[f"{stream}/d"] == 2
    reasons = sorted(h[DEADLETTER_REASON] for h, _ in await dead_letters(any_bus, stream, "d"))
    assert reasons[0].startswith("handler failed 5 deliveries, last with ValueError")
    assert reasons[1] == "refused: not valid"


class Outage:
    """A handler whose dependency is down for its first calls: raises each of `errors` once, in order, then
    records what it gets."""

    def __init__(self, *errors: Exception) -> None:
        self.errors = list(errors)
        self.calls = 0
        self.handled: list[object] = []

    async def __call__(self, envelope: MessageEnvelope) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        self.handled.append(envelope.payload)

    async def batch(self, envelopes: list[MessageEnvelope]) -> None:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        self.handled.extend(e.payload for e in envelopes)


def consumer_log(caplog: pytest.LogCaptureFixture, consumer: str) -> tuple[list[logging.LogRecord], list[str]]:
    """The records about `consumer`'s handler failing (each must carry its traceback) and its recoveries."""
    records = [r for r in caplog.records if f"consumer {consumer}:" in r.getMessage()]
    failed = [r for r in records if "handler failed" in r.getMessage()]
    assert all(r.exc_info for r in failed), "the first failure is logged with its traceback"
    return failed, [r.getMessage() for r in records if "succeeds again" in r.getMessage()]


async def test_a_failing_handler_is_logged_once_and_its_recovery_once(
    any_bus: MessageBus, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A store outage under a consumer: one traceback, silence while it lasts, one recovery line with the count
    (not a traceback per redelivery). Another kind of failure during the outage is a new problem: logged once."""
    caplog.set_level(logging.INFO)
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.>"])
    down = [ServiceUnavailable("store down")] * 4 + [ConnectionError("reset")] * 2
    handler = Outage(*down)
    await any_bus.consume(stream, "d", f"{prefix}.>", handler)
    await any_bus.publish_durable(f"{prefix}.e", env("a"))
    await eventually(lambda: handler.handled == ["a"], timeout=10)

    failed, recovered = consumer_log(caplog, f"{stream}/d")
    assert [r.exc_info[0] for r in failed if r.exc_info] == [ServiceUnavailable, ConnectionError]
    assert "store down" in failed[0].getMessage()
    assert failed[0].levelno == logging.WARNING
    assert recovered == [f"consumer {stream}/d: handler succeeds again after 6 failed attempt(s)"]

    # The next outage is a new streak: logged again, and its recovery with its own count.
    handler.errors = [RuntimeError("bug")] * 2
    await any_bus.publish_durable(f"{prefix}.e", env("b"))
    await eventually(lambda: handler.handled == ["a", "b"], timeout=10)
    failed, recovered = consumer_log(caplog, f"{stream}/d")
    assert len(failed) == 3
    assert failed[2].levelno == logging.ERROR
    assert "RuntimeError: bug" in failed[2].getMessage()
    assert recovered[1:] == [f"consumer {stream}/d: handler succeeds again after 2 failed attempt(s)"]


async def test_a_failing_batch_handler_is_logged_once_and_its_recovery_once(
    any_bus: MessageBus, prefix: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    stream = f"S{prefix}"
    await any_bus.ensure_stream(stream, [f"{prefix}.>"])
    for i in range(3):
        await any_bus.publish_durable(f"{prefix}.e", env(i))
    handler = Outage(*[ServiceUnavailable("store down")] * 5)
    await any_bus.consume_batch(stream, "b", f"{prefix}.>", handler.batch, batch=10, max_wait=0.5)
    await eventually(lambda: sorted(handler.handled) == [0, 1, 2], timeout=10)  # type: ignore[type-var]

    failed, recovered = consumer_log(caplog, f"{stream}/b")
    assert len(failed) == 1
    assert "store down" in failed[0].getMessage()
    assert recovered == [f"consumer {stream}/b: handler succeeds again after 5 failed attempt(s)"]
