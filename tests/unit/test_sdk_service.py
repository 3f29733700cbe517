"""The device SDK's runtime over the in-memory bus and a fake core-metadata: the driver facade
(`DeviceServiceSDK.push_async_values` publishes what an autoevent would), system events through the common
listener (core-metadata's real publisher, so subjects cannot drift apart), the bus command's correlation id in
the service's logs, and discovery reaching provision-watcher matching."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from core_metadata.application.ports import Kind
from core_metadata.messaging.system_events import BusSystemEventPublisher
from edgeplane_common.bus import MessageEnvelope, Topics
from edgeplane_common.bus.memory import InMemoryBus
from edgeplane_common.errors import ContractInvalid, Locked, NotFound, RemoteError
from edgeplane_common.logging import correlation_id
from edgeplane_common.models import (
    AdminState,
    Device,
    DeviceProfile,
    DeviceService,
    OperatingState,
    ProvisionWatcher,
    SystemEventAction,
    ValueType,
)
from edgeplane_sdk.driver import CommandRequest, CommandValue, DiscoveredDevice, ProtocolDriver
from edgeplane_sdk.runtime import DeviceServiceRuntime
from edgeplane_sdk.service import DeviceServiceSDK
from edgeplane_sdk.settings import DeviceServiceSettings

SERVICE = "device-fake"
PROFILE = DeviceProfile.model_validate(
    {
        "name": "Thermo",
        "deviceResources": [
            {"name": "Temp", "properties": {"valueType": "Float32", "readWrite": "R", "scale": "0.1", "units": "C"}},
            {"name": "Mode", "properties": {"valueType": "Int16", "readWrite": "RW"}},
        ],
        "deviceCommands": [
            {
                "name": "Both",
                "readWrite": "R",
                "resourceOperations": [
                    {"deviceResource": "Temp"},
                    {"deviceResource": "Mode", "mappings": {"1": "auto"}},
                ],
            }
        ],
    }
)


def device(name: str, **extra: Any) -> Device:
    return Device.model_validate(
        {"name": name, "serviceName": SERVICE, "profileName": "Thermo", "protocols": {"fake": {"Address": name}}}
        | extra
    )


class FakeMetadata:
    """What the runtime asks of core-metadata, in memory."""

    def __init__(self) -> None:
        self.devices: dict[str, Device] = {"t1": device("t1")}
        self.profiles = {"Thermo": PROFILE}
        self.watchers: list[ProvisionWatcher] = []
        self.added: list[dict[str, Any]] = []

    async def wait_ready(self) -> None:
        pass

    async def register_service(self, service: DeviceService) -> None:
        pass

    async def devices_of(self, service: str) -> list[Device]:
        return [d for d in self.devices.values() if d.service_name == service]

    async def profile(self, name: str) -> DeviceProfile:
        if name not in self.profiles:
            raise NotFound(f"device profile {name!r} does not exist")
        return self.profiles[name]

    async def set_operating_state(self, name: str, state: OperatingState) -> None:
        pass

    async def provision_watchers_of(self, service: str) -> list[ProvisionWatcher]:
        return self.watchers

    async def add_device(self, body: dict[str, Any]) -> str:
        if body["name"] in self.devices:
            raise RemoteError(f"device {body['name']} already exists", 409)
        self.added.append(body)
        self.devices[body["name"]] = Device.model_validate(body)
        return "id"

    async def close(self) -> None:
        pass

    async def ping(self) -> None:
        pass


class FakeDriver(ProtocolDriver):
    def __init__(self) -> None:
        self.sdk: DeviceServiceSDK | None = None
        self.raw: dict[str, Any] = {"Temp": 215.0, "Mode": 1}
        self.found: list[DiscoveredDevice] = []
        self.seen_correlation: list[str | None] = []

    async def initialize(self, sdk: DeviceServiceSDK) -> None:
        self.sdk = sdk

    async def handle_read_commands(
        self, device: Device, protocols: dict[str, dict[str, Any]], requests: list[CommandRequest]
    ) -> list[CommandValue]:
        assert self.sdk is not None
        self.sdk.logger.info("reading %s", device.name)
        return [CommandValue(r.resource_name, r.value_type, self.raw[r.resource_name], origin=1) for r in requests]

    async def handle_write_commands(
        self,
        device: Device,
        protocols: dict[str, dict[str, Any]],
        requests: list[CommandRequest],
        values: list[CommandValue],
    ) -> None:
        for v in values:
            self.raw[v.resource_name] = v.value

    async def discover(self) -> list[DiscoveredDevice]:
        return self.found


class Env:
    def __init__(self, bus: InMemoryBus, metadata: FakeMetadata, driver: FakeDriver, rt: DeviceServiceRuntime) -> None:
        self.bus = bus
        self.metadata = metadata
        self.driver = driver
        self.rt = rt
        self.events: list[dict[str, Any]] = []

    @property
    def sdk(self) -> DeviceServiceSDK:
        assert self.driver.sdk is not None
        return self.driver.sdk

    async def next_events(self, n: int, *, tries: int = 200) -> list[dict[str, Any]]:
        for _ in range(tries):
            if len(self.events) >= n:
                break
            await asyncio.sleep(0.01)
        got, self.events = self.events[:n], self.events[n:]
        return got


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    bus = InMemoryBus()
    await bus.connect()
    metadata = FakeMetadata()
    driver = FakeDriver()
    settings = DeviceServiceSettings(service_name=SERVICE, provision=False)
    rt = DeviceServiceRuntime(settings, driver, bus, metadata)  # type: ignore[arg-type]
    e = Env(bus, metadata, driver, rt)

    async def collect(msg: MessageEnvelope) -> None:
        e.events.append(msg.payload)

    await bus.subscribe(Topics.EVENTS_ALL, collect)
    await rt.start()
    yield e
    await rt.stop()
    await bus.close()


def readings(event: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in ("id", "origin")} for r in event["readings"]]


# ------------------------------------------------------------------------------------------- push_async_values


async def test_pushed_values_are_published_as_the_same_event_a_read_gives(env: Env) -> None:
    assert env.sdk.name == SERVICE
    assert [d.name for d in env.sdk.devices()] == ["t1"]
    assert env.sdk.device("t1").profile_name == "Thermo"
    assert env.sdk.profile("Thermo").name == "Thermo"

    await env.sdk.push_async_values("t1", [CommandValue("Temp", ValueType.FLOAT32, 215.0, origin=7)])
    (event,) = await env.next_events(1)
    read = await env.rt.executor.read_json("t1", "Temp")
    assert (event["deviceName"], event["profileName"], event["sourceName"]) == ("t1", "Thermo", "Temp")
    assert readings(event) == readings(read)  # transformed (scale 0.1) and formatted the same way
    assert readings(event)[0]["value"] == "2.15e+01"
    assert event["readings"][0]["origin"] == 7


async def test_pushed_values_of_a_command_are_one_event_in_its_resource_order(env: Env) -> None:
    values = [CommandValue("Mode", ValueType.INT16, 1), CommandValue("Temp", ValueType.FLOAT32, 100.0)]
    await env.sdk.push_async_values("t1", values, source_name="Both")
    (event,) = await env.next_events(1)
    assert event["sourceName"] == "Both"
    assert [(r["resourceName"], r["valueType"], r["value"]) for r in event["readings"]] == [
        ("Temp", "Float32", "1e+01"),
        ("Mode", "String", "auto"),  # the command's mapping applies, as for a read
    ]

    # Without a source name, each value is an event of its own resource: the resource's own reading (the
    # command's mapping does not apply), as a read of the resource by name gives it.
    await env.sdk.push_async_values("t1", values)
    mode, temp = await env.next_events(2)
    assert [mode["sourceName"], temp["sourceName"]] == ["Mode", "Temp"]
    assert readings(mode)[0]["valueType"] == "Int16"
    assert readings(mode)[0]["value"] == "1"
    assert readings(temp)[0]["value"] == "1e+01"


async def test_values_pushed_per_resource_keep_nothing_per_resource(env: Env) -> None:
    # A subscription of 1,000 resources pushes each change as an event of its resource: what an event of one
    # resource needs is built for that event, not kept for each resource (it held ~1.5 MiB for 1,000).
    registry, executor = env.rt.registry, env.rt.executor
    sources, specs = dict(registry._sources), dict(executor._specs)
    await env.sdk.push_async_values("t1", [CommandValue("Temp", ValueType.FLOAT32, 215.0)])
    await env.sdk.push_async_values("t1", [CommandValue("Mode", ValueType.INT16, 2)])
    assert [e["sourceName"] for e in await env.next_events(2)] == ["Temp", "Mode"]
    assert (registry._sources, executor._specs) == (sources, specs)


async def test_pushing_is_refused_for_what_does_not_fit(env: Env) -> None:
    with pytest.raises(NotFound, match="not managed by this device service"):
        await env.sdk.push_async_values("ghost", [CommandValue("Temp", ValueType.FLOAT32, 1.0)])
    with pytest.raises(NotFound, match="no device command or device resource named 'Nope'"):
        await env.sdk.push_async_values("t1", [CommandValue("Nope", ValueType.FLOAT32, 1.0)])
    with pytest.raises(ContractInvalid, match="one per resource"):
        await env.sdk.push_async_values("t1", [CommandValue("Temp", ValueType.FLOAT32, 1.0)], source_name="Both")
    with pytest.raises(NotFound, match="not used by this device service"):
        env.sdk.profile("Other")
    env.rt.registry.devices["t1"] = device("t1", adminState="LOCKED")
    with pytest.raises(Locked):
        await env.sdk.push_async_values("t1", [CommandValue("Temp", ValueType.FLOAT32, 1.0)])
    assert await env.next_events(1, tries=20) == []


# ------------------------------------------------------------------------------------------- system events


async def test_system_events_reach_the_registry_and_the_driver_facade(env: Env) -> None:
    publisher = BusSystemEventPublisher(env.bus)
    await publisher.publish(Kind.DEVICE, SystemEventAction.ADD, device("t2"))
    await publisher.publish(Kind.DEVICE, SystemEventAction.ADD, device("other", serviceName="device-else"))
    await publisher.publish(Kind.DEVICE, SystemEventAction.UPDATE, device("t1", adminState="LOCKED"))
    await _settle(lambda: "t2" in env.rt.registry.devices)
    assert sorted(d.name for d in env.sdk.devices()) == ["t1", "t2"]  # not another service's device
    assert env.sdk.device("t1").admin_state is AdminState.LOCKED

    changed = PROFILE.model_copy(update={"description": "changed"})
    await publisher.publish(Kind.PROFILE, SystemEventAction.UPDATE, changed)
    await _settle(lambda: env.sdk.profile("Thermo").description == "changed")

    await publisher.publish(Kind.DEVICE, SystemEventAction.DELETE, device("t2"))
    await _settle(lambda: "t2" not in env.rt.registry.devices)
    # An unreadable event is logged and changes nothing.
    await env.bus.publish(
        Topics.system_event("core-metadata", "device", "update", SERVICE, "Thermo"), MessageEnvelope(payload={"x": 1})
    )
    await publisher.publish(Kind.DEVICE, SystemEventAction.DELETE, device("t1"))
    await _settle(lambda: not env.rt.registry.devices)


async def _settle(check: Any) -> None:
    for _ in range(200):
        if check():
            return
        await asyncio.sleep(0.01)
    assert check()


# ------------------------------------------------------------------------------------------- correlation id


class _Seen(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.ids: list[tuple[str, str | None]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.ids.append((record.getMessage(), correlation_id.get()))


async def test_a_bus_command_is_logged_with_its_correlation_id(env: Env) -> None:
    seen = _Seen()
    root = logging.getLogger()
    root.addHandler(seen)
    old_level = root.level
    root.setLevel(logging.INFO)
    try:
        request = MessageEnvelope(correlation_id="cid-42")
        reply = await env.bus.request(Topics.command_request(SERVICE, "t1", "Temp", "get"), request)
        assert reply.correlation_id == "cid-42"
        await env.bus.request(
            Topics.command_request(SERVICE, "ghost", "Temp", "get"), MessageEnvelope(correlation_id="cid-43")
        )
    finally:
        root.removeHandler(seen)
        root.setLevel(old_level)
    assert ("reading t1", "cid-42") in seen.ids  # the driver's own log line
    assert any(cid == "cid-43" and "ghost" in msg for msg, cid in seen.ids)  # the failure, logged once
    assert correlation_id.get() is None  # not left behind for the next message


# ------------------------------------------------------------------------------------------- discovery


def watcher(name: str, identifiers: dict[str, str], **extra: Any) -> ProvisionWatcher:
    return ProvisionWatcher.model_validate(
        {
            "name": name,
            "serviceName": SERVICE,
            "identifiers": identifiers,
            "discoveredDevice": {
                "profileName": "Thermo",
                "adminState": "UNLOCKED",
                "autoEvents": [{"interval": "1h", "sourceName": "Temp"}],
            },
        }
        | extra
    )


async def test_discovered_devices_that_match_a_watcher_are_added_to_core_metadata(env: Env) -> None:
    env.metadata.watchers = [watcher("lab", {"Address": r"^10\.0\."}, blockingIdentifiers={"Address": ["10.0.0.9"]})]
    env.driver.found = [
        DiscoveredDevice("t1", {"fake": {"Address": "10.0.0.1"}}),  # known already: skipped
        DiscoveredDevice("new1", {"fake": {"Address": "10.0.0.2"}}, description="found", labels=["x"]),
        DiscoveredDevice("blocked", {"fake": {"Address": "10.0.0.9"}}),
        DiscoveredDevice("elsewhere", {"fake": {"Address": "192.168.0.2"}}),
    ]
    assert await env.rt.discover() == ["new1"]
    (body,) = env.metadata.added
    assert body["name"] == "new1"
    assert body["serviceName"] == SERVICE
    assert body["profileName"] == "Thermo"
    assert body["protocols"] == {"fake": {"Address": "10.0.0.2"}}
    assert body["autoEvents"] == [{"interval": "1h", "onChange": False, "sourceName": "Temp"}]
    assert (body["description"], body["labels"], body["adminState"]) == ("found", ["x"], "UNLOCKED")

    # A name core-metadata already has (another service's device) is skipped quietly.
    env.driver.found = [DiscoveredDevice("new1", {"fake": {"Address": "10.0.0.3"}})]
    assert await env.rt.discover() == []


# ------------------------------------------------------------------------------------------- secrets


async def test_the_driver_facade_gives_the_secret_store_the_app_serves() -> None:
    from edgeplane_sdk.app import create_device_service_app

    settings = DeviceServiceSettings(service_name=SERVICE, provision=False)
    app = create_device_service_app(settings, FakeDriver(), version="0", bus=InMemoryBus(), metadata=FakeMetadata())  # type: ignore[arg-type]
    await app.state.secrets.put("opcua-login", {"username": "u", "password": "p"})  # as POST /api/v3/secret does
    assert app.state.runtime.sdk.secrets.get("opcua-login") == {"username": "u", "password": "p"}
