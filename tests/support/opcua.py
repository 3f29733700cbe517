"""An OPC UA stack for tests: core-metadata + device-opcua on real HTTP/NATS/Redis, against simulators started
by the caller (asyncua's Server.init costs over a second: start simulators once per module)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from core_metadata.main import create_app as create_metadata_app
from device_opcua.main import RES_DIR
from device_opcua.main import create_app as create_opcua_app
from device_opcua.settings import DeviceOpcuaSettings
from edgeplane_common.bus import MessageEnvelope
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.embedded import free_port
from edgeplane_common.settings import NatsSettings
from tests.support.metadata import metadata_settings
from tests.support.stack import serve, wait_until

DEMO_PROFILE = RES_DIR / "profiles" / "edgeplane-demo-line.profile.yaml"
TYPES_PROFILE = RES_DIR / "profiles" / "edgeplane-opcua-types.profile.yaml"
DEMO_SIM = RES_DIR / "sim" / "demo-line.yaml"
EDGEX_SIM = RES_DIR / "sim" / "edgex-opcuaserver.yaml"


@dataclass
class Stack:
    metadata: httpx.AsyncClient
    opcua: httpx.AsyncClient
    nats_url: str
    metadata_url: str
    opcua_url: str
    app: Any = None


def opcua_device(name: str, profile: str, endpoint: str, **extra: Any) -> dict[str, Any]:
    """An AddDeviceRequest for an OPC UA device; protocol properties go in `protocol`."""
    protocol = {"Endpoint": endpoint, "Timeout": "2", **extra.pop("protocol", {})}
    return {
        "apiVersion": "v3",
        "device": {
            "name": name,
            "serviceName": "device-opcua",
            "profileName": profile,
            "adminState": "UNLOCKED",
            "operatingState": "UP",
            "protocols": {"opcua": protocol},
            **extra,
        },
    }


async def upload_profile(metadata: httpx.AsyncClient, path: Path) -> httpx.Response:
    with path.open("rb") as fh:
        return await metadata.post("/api/v3/deviceprofile/uploadfile", files={"file": fh})


@asynccontextmanager
async def opcua_stack(
    nats_url: str, redis_url: str, *, profiles: list[Path] | None = None, **settings: Any
) -> AsyncIterator[Stack]:
    r = aioredis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    async with AsyncExitStack() as es:
        md_url = await es.enter_async_context(serve(create_metadata_app(metadata_settings(nats_url, redis_url))))
        metadata = await es.enter_async_context(httpx.AsyncClient(base_url=md_url, timeout=10))
        for path in [DEMO_PROFILE, TYPES_PROFILE] if profiles is None else profiles:
            resp = await upload_profile(metadata, path)
            assert resp.status_code == 201, resp.text
        port = free_port()
        config = DeviceOpcuaSettings.model_validate(
            {
                "nats": {"url": nats_url},
                "metadata_url": md_url,
                "provision": False,
                "http": {"host": "127.0.0.1", "port": port},
                "device": {"down_after_failures": 2},
                "keepalive": 0.5,
                "max_backoff": 1.0,
                **settings,
            }
        )
        app = create_opcua_app(config)
        ds_url = await es.enter_async_context(serve(app, port))
        client = await es.enter_async_context(httpx.AsyncClient(base_url=ds_url, timeout=15))
        yield Stack(metadata, client, nats_url, md_url, ds_url, app)


async def add_device(stack: Stack, body: dict[str, Any]) -> None:
    """Add through core-metadata and wait until device-opcua has picked it up from the system event."""
    r = await stack.metadata.post("/api/v3/device", json=[body])
    assert r.json()[0]["statusCode"] == 201, r.text
    name = body["device"]["name"]
    runtime = stack.app.state.runtime
    await wait_until(lambda: name in runtime.registry.devices)


async def operating_state(stack: Stack, name: str) -> str:
    r = await stack.metadata.get(f"/api/v3/device/name/{name}")
    return str(r.json()["device"]["operatingState"])


def readings(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    return {r["resourceName"]: r for r in resp.json()["event"]["readings"]}


@dataclass
class EventLog:
    """Every event device-opcua publishes, as it arrives on the bus."""

    events: list[dict[str, Any]] = field(default_factory=list)

    def of(self, device: str, resource: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["deviceName"] == device and (resource is None or e["readings"][0]["resourceName"] == resource)
        ]


@asynccontextmanager
async def event_log(nats_url: str, subject: str = "edgex.events.device.device-opcua.>") -> AsyncIterator[EventLog]:
    bus = NatsMessageBus(NatsSettings(url=nats_url), name="opcua-test-events")
    await bus.connect()
    log = EventLog()

    async def on_event(env: MessageEnvelope) -> None:
        log.events.append(env.payload)

    sub = await bus.subscribe(subject, on_event)
    try:
        yield log
    finally:
        with contextlib.suppress(Exception):
            await sub.unsubscribe()
        await bus.close()
        await asyncio.sleep(0)
