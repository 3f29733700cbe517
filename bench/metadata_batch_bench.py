"""core-metadata under its largest requests: a 17,000-device POST and a profile upload of 5,000 resources
(the default cap), with ping latency measured while each runs. Real NATS and Redis (embedded servers); the
app in-process over ASGI. Prints figures; asserts nothing.

    .venv/bin/python bench/metadata_batch_bench.py
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import Any

import httpx

from core_metadata.main import create_app
from core_metadata.settings import CoreMetadataSettings
from edgeplane_common.embedded import EmbeddedNats, EmbeddedRedis

DEVICES = 17_000
RESOURCES = 5_000


async def timed_with_ping(client: httpx.AsyncClient, request: Awaitable[httpx.Response]) -> tuple[float, list[float]]:
    pings: list[float] = []
    done = asyncio.Event()

    async def pinger() -> None:
        while not done.is_set():
            start = time.perf_counter()
            await client.get("/api/v3/ping")
            pings.append(time.perf_counter() - start)
            await asyncio.sleep(0.01)

    task = asyncio.create_task(pinger())
    await asyncio.sleep(0)
    start = time.perf_counter()
    r = await request
    took = time.perf_counter() - start
    done.set()
    await task
    assert r.status_code in (201, 207), r.text[:300]
    return took, pings


def report(what: str, took: float, pings: list[float]) -> None:
    print(
        f"{what:<40} {took:6.2f} s   ping max {max(pings) * 1000:7.1f} ms   "
        f"median {statistics.median(pings) * 1000:5.1f} ms   ({len(pings)} pings)"
    )


async def main(nats_url: str, redis_url: str) -> None:
    settings = CoreMetadataSettings.model_validate({"nats": {"url": nats_url}, "redis": {"url": redis_url}})
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://md", timeout=120) as c,
    ):
        service = {"name": "svc", "baseAddress": "http://svc:1", "adminState": "UNLOCKED"}
        await c.post("/api/v3/deviceservice", json=[{"apiVersion": "v3", "service": service}])
        resources = "".join(
            f"  - name: r{i}\n    properties: {{valueType: Int16, readWrite: RW}}\n    attributes: {{r: {i}}}\n"
            for i in range(RESOURCES)
        )
        doc = f"name: big\ndeviceResources:\n{resources}".encode()
        upload = c.post("/api/v3/deviceprofile/uploadfile", files={"file": ("big.yaml", doc)})
        report(f"upload {RESOURCES} resources ({len(doc) // 1024} KiB)", *await timed_with_ping(c, upload))
        body: list[dict[str, Any]] = [
            {
                "apiVersion": "v3",
                "device": {"name": f"d{i}", "serviceName": "svc", "profileName": "big", "protocols": {"x": {}}},
            }
            for i in range(DEVICES)
        ]
        post = c.post("/api/v3/device", json=body, params={"bypassValidation": "true"})
        report(f"POST {DEVICES} devices", *await timed_with_ping(c, post))


if __name__ == "__main__":
    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedNats(data_dir=Path(tmp) / "nats") as nats,
        EmbeddedRedis(data_dir=Path(tmp) / "redis") as redis,
    ):
        asyncio.run(main(nats.url, redis.url))
