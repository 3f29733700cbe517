"""Discovery end to end: POST /discovery on a device service built on the SDK → the driver's discovered devices
→ the provision watchers from core-metadata (real HTTP, NATS, Redis) → matching devices added to core-metadata
→ their system events bring them back to the device service, which then serves commands for them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from core_metadata.main import create_app as create_metadata_app
from edgeplane_common.embedded import free_port
from edgeplane_common.models import Device
from edgeplane_sdk.app import create_device_service_app
from edgeplane_sdk.driver import CommandRequest, CommandValue, DiscoveredDevice, ProtocolDriver
from edgeplane_sdk.settings import DeviceServiceSettings
from tests.support.metadata import metadata_settings
from tests.support.stack import serve, wait_until

SERVICE = "device-finder"
PROFILE = {
    "name": "Meter",
    "deviceResources": [{"name": "Power", "properties": {"valueType": "Int32", "readWrite": "R"}}],
}


class FindingDriver(ProtocolDriver):
    def __init__(self) -> None:
        # The one that matches comes last: once it is in core-metadata, the others were decided on.
        self.found = [
            DiscoveredDevice("printer", {"tcp": {"Address": "10.9.0.1", "Port": "9100"}}),
            DiscoveredDevice("meter-2", {"tcp": {"Address": "10.1.0.12", "Port": "502"}}),
            DiscoveredDevice("meter-1", {"tcp": {"Address": "10.1.0.11", "Port": "502"}}, labels=["found"]),
        ]

    async def handle_read_commands(
        self, device: Device, protocols: dict[str, dict[str, Any]], requests: list[CommandRequest]
    ) -> list[CommandValue]:
        return [CommandValue(r.resource_name, r.value_type, 1234) for r in requests]

    async def handle_write_commands(
        self,
        device: Device,
        protocols: dict[str, dict[str, Any]],
        requests: list[CommandRequest],
        values: list[CommandValue],
    ) -> None:
        raise NotImplementedError

    async def discover(self) -> list[DiscoveredDevice]:
        return self.found


@pytest.fixture
async def stack(nats_url: str, redis_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    r = aioredis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    async with AsyncExitStack() as es:
        md_url = await es.enter_async_context(serve(create_metadata_app(metadata_settings(nats_url, redis_url))))
        metadata = await es.enter_async_context(httpx.AsyncClient(base_url=md_url + "/api/v3"))
        r2 = await metadata.post("/deviceprofile", json=[{"apiVersion": "v3", "profile": PROFILE}])
        assert r2.json()[0]["statusCode"] == 201, r2.text
        port = free_port()
        settings = DeviceServiceSettings.model_validate(
            {
                "service_name": SERVICE,
                "nats": {"url": nats_url},
                "metadata_url": md_url,
                "provision": False,
                "http": {"host": "127.0.0.1", "port": port},
            }
        )
        ds_url = await es.enter_async_context(
            serve(create_device_service_app(settings, FindingDriver(), version="test"), port)
        )
        ds = await es.enter_async_context(httpx.AsyncClient(base_url=ds_url + "/api/v3"))
        yield metadata, ds


async def test_a_discovered_device_that_matches_a_watcher_ends_up_in_core_metadata(
    stack: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    metadata, ds = stack
    watcher = {
        "name": "meters",
        "serviceName": SERVICE,
        "identifiers": {"Address": r"^10\.1\.", "Port": "^502$"},
        "blockingIdentifiers": {"Address": ["10.1.0.12"]},
        "discoveredDevice": {
            "profileName": "Meter",
            "adminState": "UNLOCKED",
            "autoEvents": [{"interval": "1h", "sourceName": "Power"}],
        },
    }
    r = await metadata.post("/provisionwatcher", json=[{"apiVersion": "v3", "provisionWatcher": watcher}])
    assert r.json()[0]["statusCode"] == 201, r.text

    r = await ds.post("/discovery")
    assert r.status_code == 202, r.text
    assert r.json()["requestId"]

    async def added() -> httpx.Response | None:
        got = await metadata.get("/device/name/meter-1")
        return got if got.status_code == 200 else None

    device = (await wait_until(added)).json()["device"]
    assert (device["serviceName"], device["profileName"], device["adminState"]) == (SERVICE, "Meter", "UNLOCKED")
    assert device["protocols"] == {"tcp": {"Address": "10.1.0.11", "Port": "502"}}
    assert device["labels"] == ["found"]
    assert [ae["sourceName"] for ae in device["autoEvents"]] == ["Power"]

    # The device service hears of it (system event) and serves it.
    async def served() -> bool:
        return (await ds.get("/device/name/meter-1/Power")).status_code == 200

    await wait_until(served)
    reading = (await ds.get("/device/name/meter-1/Power")).json()["event"]["readings"][0]
    assert reading["value"] == "1234"

    # The blocked and the unmatched device were not added.
    every = (await metadata.get("/device/service/name/" + SERVICE)).json()
    assert [d["name"] for d in every["devices"]] == ["meter-1"]
