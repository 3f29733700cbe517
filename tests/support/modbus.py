"""A Modbus stack for tests: simulator + core-metadata + device-modbus, real HTTP/NATS/Redis, in one loop."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import redis.asyncio as aioredis

from core_metadata.main import create_app as create_metadata_app
from device_modbus.main import RES_DIR
from device_modbus.main import create_app as create_modbus_app
from device_modbus.settings import DeviceModbusSettings
from device_modbus.sim.config import SimConfig, load_config
from device_modbus.sim.server import ModbusSimulator
from edgeplane_common.embedded import free_port
from tests.support.metadata import metadata_settings
from tests.support.stack import serve, wait_until

DEMO_PROFILE = RES_DIR / "profiles" / "edgeplane-demo-plc.profile.yaml"
DEMO_SIM = RES_DIR / "sim" / "demo-plc.yaml"


@dataclass
class Stack:
    metadata: httpx.AsyncClient
    modbus: httpx.AsyncClient
    sim: ModbusSimulator
    nats_url: str
    metadata_url: str
    modbus_url: str


def modbus_device(name: str, profile: str, port: int, unit: int = 1, **extra: Any) -> dict[str, Any]:
    """An AddDeviceRequest for a modbus-tcp device on the local simulator."""
    protocol = {"Address": "127.0.0.1", "Port": str(port), "UnitID": str(unit), "Timeout": "1", "IdleTimeout": "0"}
    return {
        "apiVersion": "v3",
        "device": {
            "name": name,
            "serviceName": "device-modbus",
            "profileName": profile,
            "adminState": "UNLOCKED",
            "operatingState": "UP",
            "protocols": {"modbus-tcp": protocol},
            **extra,
        },
    }


@asynccontextmanager
async def modbus_stack(
    nats_url: str,
    redis_url: str,
    *,
    sim_config: SimConfig | None = None,
    profiles: list[Path] | None = None,
    **modbus_settings: Any,
) -> AsyncIterator[Stack]:
    r = aioredis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    async with AsyncExitStack() as es:
        sim = await es.enter_async_context(
            ModbusSimulator(sim_config or load_config(DEMO_SIM), "127.0.0.1", 0, autotick=False)
        )
        md_url = await es.enter_async_context(serve(create_metadata_app(metadata_settings(nats_url, redis_url))))
        metadata = await es.enter_async_context(httpx.AsyncClient(base_url=md_url))
        for path in profiles or [DEMO_PROFILE]:
            with path.open("rb") as fh:
                r2 = await metadata.post("/api/v3/deviceprofile/uploadfile", files={"file": fh})
                assert r2.status_code == 201, r2.text
        port = free_port()
        settings = DeviceModbusSettings.model_validate(
            {
                "nats": {"url": nats_url},
                "metadata_url": md_url,
                "provision": False,
                "http": {"host": "127.0.0.1", "port": port},
                "device": {"down_after_failures": 2},
                **modbus_settings,
            }
        )
        ds_url = await es.enter_async_context(serve(create_modbus_app(settings), port))
        modbus = await es.enter_async_context(httpx.AsyncClient(base_url=ds_url, timeout=10))
        yield Stack(metadata, modbus, sim, nats_url, md_url, ds_url)


async def add_device(stack: Stack, body: dict[str, Any], probe: str) -> None:
    """Add through core-metadata and wait until device-modbus has picked it up from the system event."""
    r = await stack.metadata.post("/api/v3/device", json=[body])
    assert r.json()[0]["statusCode"] == 201, r.text
    name = body["device"]["name"]

    async def known() -> bool:
        return (await stack.modbus.get(f"/api/v3/device/name/{name}/{probe}")).status_code != 404

    await wait_until(known)
