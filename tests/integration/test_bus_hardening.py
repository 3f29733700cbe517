"""One bad request never silences, exhausts or stops a service (issue 9), against real nats-server and Redis:

- a name too long for a NATS subject is a 4xx for that request (core-data's event POST, core-command's read)
  and afterwards events still flow and commands still work;
- a connection the server closed (-ERR) is re-established by the adapter, with its subscriptions and durable
  consumers, and readiness says so meanwhile;
- `/api/v3/health` answers 200, then 503 while Redis is stopped, then 200 again (ping stays 200 throughout);
- an Object reading nested 300 levels is a 400 over REST, and over NATS is dead-lettered (counted in
  /metrics, kept in EDGEX_DEADLETTER) instead of redelivered forever;
- the events stream has age and byte limits once core-data started;
- credentials in a NATS URL are redacted in /api/v3/config.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.js.api import StreamConfig

from core_command.main import create_app as create_command_app
from core_command.settings import CoreCommandSettings
from core_data.main import create_app as create_data_app
from edgeplane_common.bus import DEADLETTER_REASON, DEADLETTER_SUBJECT, MessageEnvelope, Topics, UnsendableMessage
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.bus.topics import escape, subject
from edgeplane_common.clients.commands import BusCommandRelay
from edgeplane_common.embedded import EmbeddedNats, EmbeddedRedis
from edgeplane_common.errors import ContractInvalid, NotFound
from edgeplane_common.models import Device, DeviceProfile
from edgeplane_common.settings import NatsSettings
from tests.support.core_data import core_data_settings, event, event_path, reading
from tests.support.stack import serve, wait_until

LONG = 10_000


def nested(levels: int) -> Any:
    value: Any = 1
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def object_event(device: str, levels: int) -> dict[str, Any]:
    deep = reading("Blob", None, value_type="Object", device=device, objectValue=nested(levels))
    return event(device, readings=[deep])


async def stored(client: httpx.AsyncClient, event_id: str) -> bool:
    return (await client.get(f"/api/v3/event/id/{event_id}")).status_code == 200


# ------------------------------------------------------------------------------------------------ core-data


@pytest.fixture
async def core_data(nats_url: str, redis_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, str, str]]:
    """core-data consuming its own subject filter with its own bus (NATS built from settings)."""
    tag = uuid.uuid4().hex[:8]
    settings = core_data_settings(
        nats_url,
        redis_url,
        publish_rest_events=True,
        nats={"url": nats_url},
        ingest={"enabled": True, "durable": f"core-data-h-{tag}", "topic": f"edgex.events.device.h-{tag}.>"},
    )
    app = create_data_app(settings)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        await wait_until(lambda: _status(client, "/api/v3/health", 200), timeout=20)
        yield client, f"h-{tag}", f"core-data-h-{tag}"
    nc = await nats.connect(nats_url)
    await nc.jetstream().delete_consumer(Topics.EVENTS_STREAM, f"core-data-h-{tag}")
    await nc.close()


async def _status(client: httpx.AsyncClient, path: str, status: int) -> bool:
    return (await client.get(path)).status_code == status


async def test_a_name_too_long_for_a_subject_is_a_400_and_events_keep_flowing(
    core_data: tuple[httpx.AsyncClient, str, str], bus: NatsMessageBus
) -> None:
    client, service, _ = core_data
    long = event("d" * LONG)
    r = await client.post(event_path(long, service), json={"apiVersion": "v3", "event": long})
    assert r.status_code == 400, r.text
    assert "NATS subject" in r.json()["message"]
    assert not await stored(client, long["id"]), "refused before it was stored"

    health = (await client.get("/api/v3/health")).json()
    assert health["status"] == "up", health
    # Events still flow in over the bus, and REST events are still published.
    heard: list[MessageEnvelope] = []

    async def hear(envelope: MessageEnvelope) -> None:
        heard.append(envelope)

    await bus.subscribe(subject("edgex", "events", "core", escape(service), ">"), hear)
    good = event("dev-1")
    await bus.publish_durable(Topics.events(service, "Thermostat", "dev-1", "Climate"), MessageEnvelope(payload=good))
    await wait_until(lambda: stored(client, good["id"]), timeout=15)
    rest = event("dev-2")
    r = await client.post(event_path(rest, service), json={"apiVersion": "v3", "event": rest})
    assert r.status_code == 201, r.text
    await wait_until(lambda: any(e.payload["id"] == rest["id"] for e in heard), timeout=10)  # type: ignore[index]


async def test_a_deeply_nested_object_is_a_400_over_rest_and_dead_lettered_over_nats(
    core_data: tuple[httpx.AsyncClient, str, str], bus: NatsMessageBus, nats_url: str
) -> None:
    client, service, durable = core_data
    deep = object_event("dev-1", 300)
    r = await client.post(event_path(deep, service), json={"apiVersion": "v3", "event": deep})
    assert r.status_code == 400, r.text
    assert "event.readings[0].objectValue is nested deeper than" in r.json()["message"]

    topic = Topics.events(service, "Thermostat", "dev-1", "Climate")
    with pytest.raises(ContractInvalid):  # our bus cannot even encode it: refused at once
        await bus.publish_durable(topic, MessageEnvelope(payload=deep))
    # A foreign publisher (a Go device service) can: the stdlib encoder has no such depth limit.
    raw = json.dumps({"apiVersion": "v3", "correlationID": str(uuid.uuid4()), "payload": deep}).encode()
    await bus._jetstream().publish(topic, raw)
    good = event("dev-1")
    await bus.publish_durable(topic, MessageEnvelope(payload=good))
    await wait_until(lambda: stored(client, good["id"]), timeout=15)

    consumer = f"{Topics.EVENTS_STREAM}/{durable}"

    async def dead_lettered() -> float:
        text = (await client.get("/metrics")).text
        for line in text.splitlines():
            if line.startswith(f'edgeplane_bus_dead_lettered_total{{consumer="{consumer}"}}'):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    await wait_until(lambda: _equals(dead_lettered(), 1.0), timeout=10)
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        kept = await js.get_last_msg(Topics.DEADLETTER_STREAM, Topics.deadletter(Topics.EVENTS_STREAM, durable))
        assert kept.headers is not None
        assert kept.headers[DEADLETTER_SUBJECT] == topic
        assert "nested deeper than" in kept.headers[DEADLETTER_REASON]
        assert MessageEnvelope.decode(kept.data or b"").payload["id"] == deep["id"]  # type: ignore[index]
        # Terminated: the durable holds nothing back for redelivery.
        info = await js.consumer_info(Topics.EVENTS_STREAM, durable)
        assert info.num_ack_pending == 0
        assert info.num_redelivered == 0
    finally:
        await nc.close()
    await asyncio.sleep(1.5)  # a redelivery would come after ~1 s
    assert await dead_lettered() == 1.0


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_the_events_stream_has_age_and_byte_limits(
    core_data: tuple[httpx.AsyncClient, str, str], nats_url: str
) -> None:
    defaults = NatsSettings()
    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        config = (await js.stream_info(Topics.EVENTS_STREAM)).config
        assert config.max_age == defaults.events_max_age
        assert config.max_bytes == defaults.events_max_bytes
        dead = (await js.stream_info(Topics.DEADLETTER_STREAM)).config
        assert dead.max_age == defaults.deadletter_max_age
        assert dead.max_bytes == defaults.deadletter_max_bytes
    finally:
        await nc.close()


async def test_an_existing_unbounded_events_stream_gets_the_limits(tmp_path: Path) -> None:
    with EmbeddedNats(data_dir=tmp_path) as server:
        nc = await nats.connect(server.url)
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name=Topics.EVENTS_STREAM, subjects=[Topics.EVENTS_ALL]))
        bus = NatsMessageBus(NatsSettings(url=server.url, events_max_age=3600, events_max_bytes=2**20), name="t")
        await bus.connect()
        try:
            await bus.ensure_stream(Topics.EVENTS_STREAM, [Topics.EVENTS_ALL])
            config = (await js.stream_info(Topics.EVENTS_STREAM)).config
            assert (config.max_age, config.max_bytes) == (3600, 2**20)
        finally:
            await bus.close()
            await nc.close()


async def test_config_redacts_credentials_in_urls(nats_url: str, redis_url: str) -> None:
    settings = core_data_settings(
        nats_url.replace("nats://", "nats://edge:s3cret@"),
        redis_url,
        metadata_url="http://admin:hunter2@127.0.0.1:9",
    )
    app = create_data_app(settings, bus=NatsMessageBus(NatsSettings(url=nats_url), name="unused"))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cd") as client:
        r = await client.get("/api/v3/config")
    assert "s3cret" not in r.text
    assert "hunter2" not in r.text
    config = r.json()["config"]
    assert config["nats"]["url"] == nats_url.replace("nats://", "nats://edge:**********@")
    assert config["metadata_url"] == "http://admin:**********@127.0.0.1:9"


# ----------------------------------------------------------------------------------------- health with Redis


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[EmbeddedRedis]:
    """A Redis of this test's own, so stopping it disturbs no other test."""
    with EmbeddedRedis(data_dir=tmp_path / "redis") as server:
        yield server


async def test_health_is_503_while_redis_is_down_and_ping_stays_200(
    own_redis: EmbeddedRedis, nats_url: str, bus: NatsMessageBus
) -> None:
    settings = core_data_settings(nats_url, own_redis.url)
    app = create_data_app(settings, bus=bus)
    async with serve(app) as url, httpx.AsyncClient(base_url=url, timeout=10) as client:
        r = await client.get("/api/v3/health")
        assert r.status_code == 200, r.text
        checks = r.json()["checks"]
        redis_check = next(name for name in checks if name.startswith("Redis at"))
        assert checks["NATS"]["status"] == "up"
        assert checks[redis_check]["status"] == "up"

        await asyncio.to_thread(own_redis.stop)
        r = await client.get("/api/v3/health")
        assert r.status_code == 503, r.text
        body = r.json()
        assert body["status"] == "down"
        assert body["checks"][redis_check]["status"] == "down"
        assert body["checks"][redis_check]["message"]
        assert body["checks"]["NATS"]["status"] == "up"
        assert (await client.get("/api/v3/ping")).status_code == 200

        await asyncio.to_thread(own_redis.start)
        await wait_until(lambda: _status(client, "/api/v3/health", 200), timeout=20)


# ----------------------------------------------------------------------------------- the connection revived


async def test_a_connection_the_server_closed_is_re_established_with_its_subscriptions(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with EmbeddedNats(data_dir=tmp_path) as server:
        bus = NatsMessageBus(NatsSettings(url=server.url), name="revive", redelivery_delay=0.1)
        await bus.connect()
        try:
            heard: list[object] = []
            consumed: list[object] = []

            async def hear(envelope: MessageEnvelope) -> None:
                heard.append(envelope.payload)

            async def consume(envelope: MessageEnvelope) -> None:
                consumed.append(envelope.payload)

            await bus.subscribe("probe.>", hear)
            await bus.ensure_stream("REVIVE", ["durable.>"])
            await bus.consume("REVIVE", "d", "durable.>", consume)

            # What an unguarded client would send: the server answers -ERR and closes the connection; nats-py
            # does not reconnect after that.
            nc = bus._nc
            assert nc is not None
            caplog.set_level(logging.INFO, logger="edgeplane_common.bus.nats")
            await nc.publish("probe." + "x" * LONG, b"")
            await wait_until(lambda: nc.is_closed, timeout=10)
            await wait_until(lambda: bus.problem() is None, timeout=20)
            assert bus._nc is not nc, "a new client replaced the closed one"

            await bus.publish("probe.after", MessageEnvelope(payload="core"))
            await bus.publish_durable("durable.after", MessageEnvelope(payload="durable"))
            await wait_until(lambda: heard == ["core"] and consumed == ["durable"], timeout=15)
            lost = [r for r in caplog.records if "was closed" in r.getMessage()]
            back = [r for r in caplog.records if "re-established" in r.getMessage()]
            assert len(lost) == 1
            assert len(back) == 1
            assert "maximum control line" in lost[0].getMessage()

            # A server restart (nats-py's own reconnect) keeps working too.
            await asyncio.to_thread(server.stop)
            await wait_until(lambda: bus.problem() is not None, timeout=10)
            await asyncio.to_thread(server.start)
            await wait_until(lambda: bus.problem() is None, timeout=20)
            await bus.publish_durable("durable.restart", MessageEnvelope(payload="restart"))
            await wait_until(lambda: consumed == ["durable", "restart"], timeout=15)
        finally:
            await bus.close()


# ------------------------------------------------------------------------------------------------ core-command

PROFILE = DeviceProfile.model_validate(
    {"name": "Pump", "deviceResources": [{"name": "Flow", "properties": {"valueType": "Uint16", "readWrite": "R"}}]}
)


class Metadata:
    """Devices by name."""

    def __init__(self, devices: list[Device]) -> None:
        self.devices = {d.name: d for d in devices}

    async def device(self, name: str) -> Device:
        if name not in self.devices:
            raise NotFound(f"device {name!r} does not exist")
        return self.devices[name]

    async def profile(self, name: str) -> DeviceProfile:
        return PROFILE

    async def devices(self, offset: int, limit: int) -> tuple[list[Device], int]:
        return list(self.devices.values()), len(self.devices)

    async def close(self) -> None:
        pass


async def test_a_device_name_too_long_for_a_subject_is_a_400_and_commands_keep_working(bus: NatsMessageBus) -> None:
    long_name = "p" * 5_000

    async def device_service(envelope: MessageEnvelope) -> MessageEnvelope:
        return envelope.reply({"apiVersion": "v3", "statusCode": 200, "event": None})

    await bus.subscribe("edgex.device.command.request.svc.>", device_service)
    pump = Device.model_validate({"id": "p1", "name": "pump1", "serviceName": "svc", "profileName": "Pump"})
    # A name stored before names had a length cap (copied without validation): the relay's bus guard refuses it.
    legacy = pump.model_copy(update={"name": long_name})
    with pytest.raises(UnsendableMessage) as refused:
        await BusCommandRelay(bus, timeout=1).get(legacy, "Flow", {})
    assert refused.value.status_code == 400
    settings = CoreCommandSettings.model_validate({"cache": {"enabled": False}})
    app = create_command_app(settings, metadata=Metadata([pump, legacy]), bus=bus)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://cc") as c:
        # Refused by the name rules of the path, or (a stored name from before them) by the bus guard: a 400
        # either way, never a request that makes the server close core-command's connection.
        r = await c.get(f"/api/v3/device/name/{long_name}/Flow")
        assert r.status_code == 400, r.text
        assert bus.problem() is None
        r = await c.get("/api/v3/device/name/pump1/Flow?ds-returnevent=false")
        assert r.status_code == 200, r.text
        assert (await c.get("/api/v3/health")).status_code == 200
