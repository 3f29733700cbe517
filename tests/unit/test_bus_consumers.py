"""BatchConsumers (the events consumers of core-data and the app services): started once NATS is there,
every (durable, subject) with its members, reported to readiness, stopped together."""

from __future__ import annotations

import asyncio
import logging

import pytest

from edgeplane_common.bus import MessageEnvelope, Rejections, Topics
from edgeplane_common.bus.consumers import BatchConsumers
from edgeplane_common.bus.memory import InMemoryBus
from tests.support.stack import wait_until


async def test_run_retries_until_the_bus_is_there_then_consumes(caplog: pytest.LogCaptureFixture) -> None:
    bus = InMemoryBus()
    seen: list[str] = []

    async def handle(envelopes: list[MessageEnvelope]) -> Rejections | None:
        seen.extend(e.received_topic or "" for e in envelopes)
        return None

    a = Topics.events("svc", "P", "dev-a", "S")
    b = Topics.events("svc", "P", "dev-b", "S")
    group = BatchConsumers(
        bus,
        Topics.EVENTS_STREAM,
        [Topics.EVENTS_ALL],
        handle,
        [("app", a), ("app-1", b)],
        members=2,
        batch=4,
        retry_s=0.01,
    )
    assert group.problem() is not None
    caplog.set_level(logging.INFO, logger="edgeplane_common.bus.consumers")
    running = asyncio.create_task(group.run())
    await asyncio.sleep(0.05)
    assert not running.done(), "retries while the bus is not connected"
    assert group.problem() is not None
    await bus.connect()
    await asyncio.wait_for(running, 5)
    assert len(group.subscriptions) == 4, "each durable with its members"
    assert group.problem() is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, "the retry is logged once"
    assert any(r.getMessage() == "consuming events now" for r in caplog.records)

    for topic in (a, b, Topics.events("svc", "P", "dev-c", "S")):
        await bus.publish_durable(topic, MessageEnvelope(payload={"x": 1}))
    await wait_until(lambda: len(seen) == 2, timeout=5)
    assert sorted(seen) == sorted([a, b]), "each durable sees only its subject"

    await group.stop()
    assert group.subscriptions == []
    assert group.problem() is not None
    await bus.close()
