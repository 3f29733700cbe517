"""core-command's REST API over an in-memory bus and an in-memory metadata source: the relay (topics, query
parameters, payloads, correlation ids), every error case with its status and message, and the cache kept
fresh by the system events core-metadata publishes (its real publisher, so topics cannot drift apart)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from core_command.main import create_app
from core_command.settings import CoreCommandSettings
from core_metadata.application.ports import Kind
from core_metadata.messaging.system_events import BusSystemEventPublisher
from edgeplane_common.bus import MessageEnvelope
from edgeplane_common.bus.memory import InMemoryBus
from edgeplane_common.errors import CommunicationError, EdgeError, NotFound
from edgeplane_common.models import Device, DeviceProfile, SystemEventAction

PROFILE = DeviceProfile.model_validate(
    {
        "name": "Pump",
        "deviceResources": [
            {"name": "Flow", "properties": {"valueType": "Uint16", "readWrite": "R"}},
            {"name": "Speed", "properties": {"valueType": "Uint16", "readWrite": "RW", "minimum": 0, "maximum": 3000}},
            {"name": "Temp", "properties": {"valueType": "Float32", "readWrite": "RW", "minimum": -20, "maximum": 90}},
            {"name": "Reset", "properties": {"valueType": "Bool", "readWrite": "W"}},
        ],
        "deviceCommands": [
            {
                "name": "Setpoints",
                "readWrite": "RW",
                "resourceOperations": [{"deviceResource": "Speed"}, {"deviceResource": "Temp"}],
            }
        ],
    }
)


def device(name: str, service: str = "svc", **kw: Any) -> Device:
    return Device.model_validate(
        {"id": f"id-{name}", "name": name, "serviceName": service, "profileName": "Pump", **kw}
    )


class Metadata:
    def __init__(self) -> None:
        self.devices_by_name = {
            d.name: d
            for d in [
                device("pump1"),
                device("pump2"),
                device("locked", adminState="LOCKED"),
                device("down", operatingState="DOWN"),
                device("ghost-owned", service="device-ghost"),
                device("slow1", service="svc-slow"),
                device("bare", profileName=None),
            ]
        }
        self.calls = 0

    async def device(self, name: str) -> Device:
        self.calls += 1
        if name not in self.devices_by_name:
            raise NotFound(f"device {name!r} does not exist")
        return self.devices_by_name[name]

    async def profile(self, name: str) -> DeviceProfile:
        self.calls += 1
        if name != PROFILE.name:
            raise NotFound(f"device profile {name!r} does not exist")
        return PROFILE

    async def devices(self, offset: int, limit: int) -> tuple[list[Device], int]:
        items = sorted(self.devices_by_name.values(), key=lambda d: d.name)
        return items[offset : offset + limit if limit >= 0 else None], len(items)

    async def close(self) -> None:
        pass


@dataclass
class DeviceService:
    """Answers command requests for `svc` like the SDK runtime; `refuse` makes a device fail with an EdgeError."""

    requests: list[MessageEnvelope] = field(default_factory=list)
    refuse: dict[str, EdgeError] = field(default_factory=dict)

    async def handle(self, env: MessageEnvelope) -> MessageEnvelope:
        self.requests.append(env)
        parts = (env.received_topic or "").split(".")
        dev, cmd, method = parts[-3], parts[-2], parts[-1]
        if dev in self.refuse:
            raise self.refuse[dev]
        params = env.query_params or {}
        if method == "set":
            return env.reply({"apiVersion": "v3", "statusCode": 200})
        body: dict[str, Any] = {"apiVersion": "v3", "statusCode": 200}
        if params.get("ds-returnevent", "true") == "true":
            body["event"] = {"apiVersion": "v3", "id": str(uuid.uuid4()), "deviceName": dev, "profileName": "Pump",
                             "sourceName": cmd, "origin": 1, "readings": []}  # fmt: skip
        return env.reply(body)


@dataclass
class Env:
    client: httpx.AsyncClient
    ds: DeviceService
    metadata: Metadata
    bus: InMemoryBus


TIMEOUT = 0.3
PATIENT_TIMEOUT = 30.0
"""A command timeout no answer given "at once" comes near, even on a busy CI machine."""


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    async with running(TIMEOUT) as e:
        yield e


@pytest.fixture
async def patient_env() -> AsyncIterator[Env]:
    async with running(PATIENT_TIMEOUT) as e:
        yield e


@asynccontextmanager
async def running(timeout: float) -> AsyncIterator[Env]:
    bus = InMemoryBus()
    await bus.connect()
    ds = DeviceService()
    await bus.subscribe("edgex.device.command.request.svc.>", ds.handle)

    async def slow(env: MessageEnvelope) -> MessageEnvelope:
        await asyncio.sleep(TIMEOUT * 3)
        return env.reply({"apiVersion": "v3", "statusCode": 200})

    await bus.subscribe("edgex.device.command.request.svc-slow.>", slow)
    metadata = Metadata()
    settings = CoreCommandSettings.model_validate({"command": {"timeout": timeout}, "http": {"port": 59882}})
    app = create_app(settings, metadata=metadata, bus=bus)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://cc") as c:
        yield Env(c, ds, metadata, bus)
    await bus.close()


def url(device: str, command: str = "") -> str:
    return f"/api/v3/device/name/{device}" + (f"/{command}" if command else "")


async def expect_error(r: httpx.Response, status: int, *fragments: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["statusCode"] == status
    assert body["apiVersion"] == "v3"
    for fragment in fragments:
        assert fragment in body["message"], body["message"]


# ---------------------------------------------------------------------------------------------- the relay


async def test_get_relays_to_the_owning_service_with_query_params_and_correlation_id(env: Env) -> None:
    cid = str(uuid.uuid4())
    r = await env.client.get(
        url("pump1", "Flow"), params={"ds-pushevent": "TRUE", "jsonObject": "e30="}, headers={"X-Correlation-ID": cid}
    )
    assert r.status_code == 200, r.text
    assert r.headers["x-correlation-id"] == cid
    body = r.json()
    assert (body["apiVersion"], body["statusCode"], body["event"]["deviceName"]) == ("v3", 200, "pump1")
    sent = env.ds.requests[-1]
    assert sent.received_topic == "edgex.device.command.request.svc.pump1.Flow.get"
    assert sent.query_params == {"ds-pushevent": "true", "jsonObject": "e30="}
    assert sent.correlation_id == cid

    r = await env.client.get(url("pump1", "Setpoints"), params={"ds-returnevent": "false"})
    assert r.status_code == 200
    assert "event" not in r.json()


async def test_put_relays_the_settings_object_as_sent(env: Env) -> None:
    settings = {"Speed": 1450, "Temp": "55.5"}
    r = await env.client.put(url("pump1", "Setpoints"), json=settings)
    assert r.status_code == 200, r.text
    assert r.json() == {"apiVersion": "v3", "statusCode": 200}
    sent = env.ds.requests[-1]
    assert sent.received_topic == "edgex.device.command.request.svc.pump1.Setpoints.set"
    assert sent.payload == settings


async def test_listing_commands(env: Env) -> None:
    r = await env.client.get(url("pump1"))
    assert r.status_code == 200
    dcc = r.json()["deviceCoreCommand"]
    assert (dcc["deviceName"], dcc["profileName"]) == ("pump1", "Pump")
    assert [c["name"] for c in dcc["coreCommands"]] == ["Setpoints", "Flow", "Speed", "Temp", "Reset"]
    assert dcc["coreCommands"][0]["url"] == "http://127.0.0.1:59882"
    bare = (await env.client.get(url("bare"))).json()["deviceCoreCommand"]
    assert bare == {"deviceName": "bare", "profileName": "", "coreCommands": []}

    every = (await env.client.get("/api/v3/device/all", params={"limit": -1})).json()
    assert every["totalCount"] == len(env.metadata.devices_by_name)
    assert [d["deviceName"] for d in every["deviceCoreCommands"]] == sorted(env.metadata.devices_by_name)
    page = (await env.client.get("/api/v3/device/all", params={"offset": 1, "limit": 2})).json()
    assert [d["deviceName"] for d in page["deviceCoreCommands"]] == sorted(env.metadata.devices_by_name)[1:3]
    await expect_error(await env.client.get("/api/v3/device/all", params={"limit": -2}), 400, "limit")
    await expect_error(await env.client.get(url("nope")), 404, "device 'nope' does not exist")


async def test_the_cache_spares_metadata_round_trips(env: Env) -> None:
    for _ in range(5):
        assert (await env.client.get(url("pump1", "Flow"))).status_code == 200
    assert env.metadata.calls == 2  # one device and one profile lookup, then hits


# ---------------------------------------------------------------------------------------------- error cases


async def test_every_error_case_answers_its_status_and_a_clear_message(env: Env) -> None:
    c = env.client
    sent_before = len(env.ds.requests)
    await expect_error(await c.get(url("nope", "Flow")), 404, "device 'nope' does not exist")
    await expect_error(
        await c.get(url("pump1", "Nope")),
        404,
        "device 'pump1'",
        "profile 'Pump' has no device command or device resource named 'Nope'",
    )
    await expect_error(await c.get(url("bare", "Flow")), 404, "device 'bare' has no device profile")
    await expect_error(await c.get(url("locked", "Flow")), 423, "device 'locked' is LOCKED")
    await expect_error(await c.put(url("locked", "Speed"), json={"Speed": "1"}), 423, "LOCKED")
    await expect_error(await c.get(url("down", "Flow")), 423, "device 'down' is DOWN")
    await expect_error(
        await c.put(url("pump1", "Flow"), json={"Flow": "1"}),
        405,
        "device resource 'Flow' of device 'pump1' is read-only",
    )
    await expect_error(
        await c.get(url("pump1", "Reset")), 405, "device resource 'Reset' of device 'pump1' is write-only"
    )
    await expect_error(
        await c.put(url("pump1", "Speed"), json={"Speed": "3001"}), 400, "resource 'Speed'", "above the maximum 3000"
    )
    await expect_error(await c.put(url("pump1", "Setpoints"), json={"Temp": "hot"}), 400, "invalid Float32 value 'hot'")
    await expect_error(
        await c.put(url("pump1", "Setpoints"), json={"Sped": "1"}), 400, "has no resource 'Sped'; it writes Speed, Temp"
    )
    await expect_error(await c.put(url("pump1", "Setpoints"), json=[1]), 400, "must be a JSON object")
    await expect_error(
        await c.put(url("pump1", "Setpoints"), content=b"{nope", headers={"Content-Type": "application/json"}),
        400,
        "not valid JSON",
    )
    await expect_error(
        await c.put(url("pump1", "Setpoints"), content=b"", headers={"Content-Type": "application/json"}),
        400,
        "body is empty",
    )
    await expect_error(
        await c.get(url("pump1", "Flow"), params={"ds-pushevent": "yes"}),
        400,
        "ds-pushevent='yes' is invalid: use true or false",
    )
    # None of these reached the device service.
    assert len(env.ds.requests) == sent_before


async def test_device_refusals_pass_through_with_their_status_and_message(env: Env) -> None:
    env.ds.refuse["pump2"] = CommunicationError("Modbus exception 2 (illegal data address) from unit 1")
    await expect_error(
        await env.client.get(url("pump2", "Flow")), 502, "Modbus exception 2 (illegal data address) from unit 1"
    )
    env.ds.refuse["pump2"] = NotFound("device 'pump2' is not managed by this device service")
    r = await env.client.put(url("pump2", "Speed"), json={"Speed": "5"})
    await expect_error(r, 404, "not managed by this device service")
    assert r.json()["message"] == "device 'pump2' is not managed by this device service"


async def test_a_service_that_is_not_running_answers_503_at_once(patient_env: Env) -> None:
    start = time.perf_counter()
    r = await patient_env.client.get(url("ghost-owned", "Flow"))
    elapsed = time.perf_counter() - start
    await expect_error(
        r,
        503,
        "device service 'device-ghost' is unavailable for get command 'Flow' of device 'ghost-owned'",
        "no service is listening",
    )
    # Not after the (long) timeout: nobody listens, and NATS says so at once. The bound is far above any
    # answer given at once, even on a loaded machine, and far below the timeout.
    assert elapsed < PATIENT_TIMEOUT / 3


async def test_a_slow_service_answers_503_after_the_timeout(env: Env) -> None:
    start = time.perf_counter()
    r = await env.client.put(url("slow1", "Speed"), json={"Speed": "5"})
    elapsed = time.perf_counter() - start
    await expect_error(
        r,
        503,
        "device service 'svc-slow' is unavailable for set command 'Speed' of device 'slow1'",
        f"within {TIMEOUT:g}s",
    )
    assert elapsed >= TIMEOUT


async def test_a_malformed_reply_is_a_502(env: Env) -> None:
    async def broken(env_: MessageEnvelope) -> MessageEnvelope:
        return env_.reply(["not", "an", "object"])

    await env.bus.subscribe("edgex.device.command.request.svc-broken.>", broken)
    env.metadata.devices_by_name["b1"] = device("b1", service="svc-broken")
    await expect_error(
        await env.client.get(url("b1", "Flow")), 502, "answered get command 'Flow' of device 'b1' with list"
    )


# ------------------------------------------------------------------------------------------- system events


async def test_system_events_keep_the_cache_fresh(env: Env) -> None:
    publisher = BusSystemEventPublisher(env.bus)
    assert (await env.client.get(url("pump1", "Flow"))).status_code == 200
    locked = device("pump1", adminState="LOCKED")
    await publisher.publish(Kind.DEVICE, SystemEventAction.UPDATE, locked)

    async def status() -> int:
        return (await env.client.get(url("pump1", "Flow"))).status_code

    for _ in range(50):
        if await status() == 423:
            break
        await asyncio.sleep(0.01)
    assert await status() == 423
    await publisher.publish(Kind.DEVICE, SystemEventAction.UPDATE, device("pump1"))
    await asyncio.sleep(0.05)
    assert await status() == 200

    # A profile update changes what the device offers, at once.
    changed = PROFILE.model_copy(update={"device_resources": PROFILE.device_resources[:1], "device_commands": []})
    await publisher.publish(Kind.PROFILE, SystemEventAction.UPDATE, changed)
    await asyncio.sleep(0.05)
    names = [c["name"] for c in (await env.client.get(url("pump1"))).json()["deviceCoreCommand"]["coreCommands"]]
    assert names == ["Flow"]
    await expect_error(
        await env.client.get(url("pump1", "Speed")), 404, "no device command or device resource named 'Speed'"
    )

    # A delete event drops the device (the next lookup asks core-metadata, which no longer has it).
    await publisher.publish(Kind.DEVICE, SystemEventAction.DELETE, device("pump1"))
    del env.metadata.devices_by_name["pump1"]
    await asyncio.sleep(0.05)
    await expect_error(await env.client.get(url("pump1", "Flow")), 404, "device 'pump1' does not exist")
    assert env.metadata.calls <= 4


async def test_an_unreadable_system_event_clears_the_cache(env: Env) -> None:
    await env.client.get(url("pump1", "Flow"))
    calls = env.metadata.calls
    await env.bus.publish("edgex.system-events.core-metadata.device.update.svc.Pump", MessageEnvelope(payload={"x": 1}))
    await asyncio.sleep(0.05)
    await env.client.get(url("pump1", "Flow"))
    assert env.metadata.calls == calls + 2


async def test_core_metadata_unreachable_is_a_503_but_cached_devices_keep_working() -> None:
    from edgeplane_common.clients import CachedMetadata, MetadataClient
    from edgeplane_common.embedded import free_port

    bus = InMemoryBus()
    await bus.connect()
    ds = DeviceService()
    await bus.subscribe("edgex.device.command.request.svc.>", ds.handle)
    dead = MetadataClient(f"http://127.0.0.1:{free_port()}", timeout=1)
    app = create_app(CoreCommandSettings(), metadata=dead, bus=bus)
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://cc") as c:
        await expect_error(
            await c.get(url("pump1", "Flow")), 503, "core-metadata at http://127.0.0.1:", "is unreachable"
        )
        cache: CachedMetadata = app.state.metadata_cache
        cache.device_changed(device("pump1"))  # as a system event would
        cache.profile_changed(PROFILE)
        assert (await c.get(url("pump1", "Flow"))).status_code == 200
    await dead.close()
    await bus.close()
