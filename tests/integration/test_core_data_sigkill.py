"""core-data killed (SIGKILL) while events are being published: after a restart every event is stored once.

core-data runs as a real process (`python -m core_data`) against the session's nats-server and Redis. A bus
publishes events durably while it consumes; once part of them is stored the process is killed without
warning (batches in flight, written but not acknowledged, or acknowledged-then-lost are all possible), then
started again. JetStream redelivers what was not acknowledged; core-data's writes are idempotent by event
id. The test asserts the stored events are exactly the published ones, each once, with all their readings.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import nats
import pytest
import redis.asyncio as aioredis
from nats.js.api import AckPolicy, ConsumerConfig

from core_data.infrastructure.redis_store import EV, EV_ALL, RD_ALL
from edgeplane_common.bus import MessageEnvelope, Topics
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.embedded import free_port
from tests.support.core_data import event, reading
from tests.support.stack import wait_until

ROOT = Path(__file__).resolve().parents[2]
KILL_AFTER = 600
"""Events stored before the first kill."""
TAIL = 1000
"""Events published after the kill has landed (before it: as many as it takes, at most MAX_EVENTS)."""
MAX_EVENTS = 12_000
READINGS = 3
DEVICES = 5


class CoreDataProcess:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.env = env
        self.log = log
        self.port = int(env["CORE_DATA_HTTP__PORT"])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "core_data"], env=self.env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT
            )

    async def ready(self) -> None:
        async def ping() -> bool:
            assert self.proc is not None
            assert self.proc.poll() is None, f"core-data exited; see {self.log}"
            try:
                async with httpx.AsyncClient() as c:
                    return (await c.get(f"http://127.0.0.1:{self.port}/api/v3/ping")).status_code == 200
            except httpx.HTTPError:
                return False

        await wait_until(ping, timeout=30, interval=0.1)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def core_data_env(nats_url: str, redis_url: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:8]
    return {
        **os.environ,
        "CORE_DATA_NATS__URL": nats_url,
        "CORE_DATA_REDIS__URL": redis_url,
        "CORE_DATA_HTTP__PORT": str(free_port()),
        "CORE_DATA_HTTP__HOST": "127.0.0.1",
        "CORE_DATA_INGEST__DURABLE": f"core-data-sigkill-{tag}",
        "CORE_DATA_INGEST__TOPIC": f"edgex.events.device.sigkill-{tag}.>",
        "CORE_DATA_RETENTION__ENABLED": "false",
        "CORE_DATA_MAX_RESULT_COUNT": str(MAX_EVENTS),
        "CORE_DATA_LOG_JSON": "false",
        "TEST_TAG": tag,
    }


@pytest.fixture
def process(core_data_env: dict[str, str], tmp_path: Path) -> Iterator[CoreDataProcess]:
    proc = CoreDataProcess(core_data_env, tmp_path / "core-data.log")
    yield proc
    proc.stop()


async def test_sigkill_mid_stream_loses_and_duplicates_nothing(
    process: CoreDataProcess, core_data_env: dict[str, str], bus: NatsMessageBus, nats_url: str, redis_url: str
) -> None:
    tag = core_data_env["TEST_TAG"]
    service = f"sigkill-{tag}"
    r = aioredis.from_url(redis_url)
    await r.flushdb()
    # The durable consumer, made beforehand with a short ack wait so that what the killed process held is
    # redelivered within the test (JetStream's default is 30 s); core-data binds to it.
    await bus.ensure_stream(Topics.EVENTS_STREAM, [Topics.EVENTS_ALL])
    nc = await nats.connect(nats_url)
    js = nc.jetstream()
    durable = core_data_env["CORE_DATA_INGEST__DURABLE"]
    await js.add_consumer(
        Topics.EVENTS_STREAM,
        ConsumerConfig(
            durable_name=durable,
            filter_subject=core_data_env["CORE_DATA_INGEST__TOPIC"],
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=2,
        ),
    )

    process.start()
    await process.ready()

    published: list[str] = []

    async def publish_one(i: int) -> None:
        dev = f"dev-{i % DEVICES}"
        ev = event(dev, readings=[reading(f"R{j}", f"{i}.{j}", device=dev) for j in range(READINGS)])
        topic = Topics.events(service, ev["profileName"], dev, ev["sourceName"])
        await bus.publish_durable(topic, MessageEnvelope(payload=ev))
        published.append(ev["id"])

    killed = asyncio.Event()

    async def publish() -> None:
        # 50 publishes in flight at a time: faster than core-data stores, so it always holds messages it
        # has not acknowledged yet. Going on until the kill has landed (a restart between two kill attempts
        # takes seconds), so that it always lands mid-stream; then TAIL more.
        i, end = 0, MAX_EVENTS
        while i < end:
            if end == MAX_EVENTS and killed.is_set():
                end = i + TAIL
            await asyncio.gather(*(publish_one(j) for j in range(i, i + 50)))
            i += 50
            await asyncio.sleep(0.02)

    publisher = asyncio.create_task(publish())
    await wait_until(lambda: _stored(r, KILL_AFTER), timeout=60)

    async def busy() -> bool:
        return bool((await js.consumer_info(Topics.EVENTS_STREAM, durable)).num_ack_pending)

    # Kill it with deliveries in its hands. Between seeing acks pending and the kill landing, core-data may
    # acknowledge everything it held (seen on a loaded machine): then the kill proved nothing, so it is
    # started again and killed again. What the server still counts as pending after the kill is what the
    # killed process held; that must come again.
    for _attempt in range(5):
        await wait_until(busy, timeout=30, interval=0.01)
        process.kill()
        if (await js.consumer_info(Topics.EVENTS_STREAM, durable)).num_ack_pending:
            break
        process.start()
        await process.ready()
    else:
        pytest.fail("core-data never held an unacknowledged delivery when killed (5 attempts)")
    killed.set()
    stored_at_kill = int(await r.zcard(EV_ALL))
    assert not publisher.done(), f"no kill landed while {MAX_EVENTS} events were published"

    t_kill = time.monotonic()
    process.start()
    await process.ready()
    print(f"restarted in {time.monotonic() - t_kill:.1f}s")
    await publisher
    events = len(published)
    assert stored_at_kill < events
    await wait_until(lambda: _stored(r, events), timeout=90, interval=0.2)
    print(f"all stored {time.monotonic() - t_kill:.1f}s after the kill")
    await asyncio.sleep(3)  # redeliveries still in flight after the count is reached must not add anything

    # every published event exactly once, with every reading, through the REST API too
    assert int(await r.hlen(EV)) == events
    assert int(await r.zcard(EV_ALL)) == events
    assert int(await r.zcard(RD_ALL)) == events * READINGS
    base = f"http://127.0.0.1:{process.port}/api/v3"
    async with httpx.AsyncClient(base_url=base, timeout=30) as c:
        assert (await c.get("/event/count")).json()["count"] == events
        assert (await c.get("/reading/count")).json()["count"] == events * READINGS
        stored_ids: list[str] = []
        for d in range(DEVICES):
            page = (await c.get(f"/event/device/name/dev-{d}", params={"limit": -1})).json()
            assert page["totalCount"] == events // DEVICES
            stored_ids += [e["id"] for e in page["events"]]
            assert all(len(e["readings"]) == READINGS for e in page["events"])
            assert (await c.get(f"/reading/count/device/name/dev-{d}")).json()["count"] == events // DEVICES * READINGS
    assert len(stored_ids) == len(set(stored_ids)) == events
    assert set(stored_ids) == set(published)

    # and the stream owes core-data nothing
    info = await js.consumer_info(Topics.EVENTS_STREAM, durable)
    assert (info.num_pending, info.num_ack_pending) == (0, 0)
    # deliveries beyond one per event: what the killed process held unacknowledged came again, and was
    # not stored twice (the point of this test)
    redelivered = info.delivered.consumer_seq - events
    print(f"stored at kill {stored_at_kill}, redelivered {redelivered}")
    assert redelivered > 0
    process.stop()
    await js.delete_consumer(Topics.EVENTS_STREAM, durable)
    await nc.close()
    await r.aclose()


async def _stored(r: aioredis.Redis, at_least: int) -> bool:
    return int(await r.zcard(EV_ALL)) >= at_least
