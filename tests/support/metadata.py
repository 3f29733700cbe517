"""Fixtures that run core-metadata in-process against the real NATS and Redis servers of the session.

Registered from tests/conftest.py via `pytest_plugins`; `redis_url` and `nats_url` come from there.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import redis.asyncio as aioredis

from core_metadata.main import create_app
from core_metadata.settings import CoreMetadataSettings
from tests.support.reference import REFERENCE

_REF = REFERENCE or Path("/nonexistent")
SAMPLES = _REF / "edgex-samples"
OPENAPI = _REF / "edgex-openapi" / "v4.0.2"
SAMPLE_PROFILES = sorted(
    p for p in SAMPLES.rglob("*.y*ml") if "deviceList" not in p.read_text() and p.name != "README.md"
)
SAMPLE_DEVICE_FILES = sorted(p for p in SAMPLES.rglob("*.y*ml") if "deviceList" in p.read_text())


def metadata_settings(nats_url: str, redis_url: str, **overrides: object) -> CoreMetadataSettings:
    return CoreMetadataSettings.model_validate({"nats": {"url": nats_url}, "redis": {"url": redis_url}, **overrides})


@pytest.fixture
async def metadata_app_factory(nats_url: str, redis_url: str):  # type: ignore[no-untyped-def]
    """Build and start core-metadata apps (several = restarts); all are shut down at the end."""
    started = []

    async def start(**overrides: object) -> httpx.AsyncClient:
        app = create_app(metadata_settings(nats_url, redis_url, **overrides))
        ctx = app.router.lifespan_context(app)
        await ctx.__aenter__()
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://core-metadata")
        started.append((ctx, client))
        return client

    yield start
    for ctx, client in reversed(started):
        await client.aclose()
        await ctx.__aexit__(None, None, None)


@pytest.fixture
async def metadata(metadata_app_factory, redis_url: str) -> httpx.AsyncClient:  # type: ignore[no-untyped-def]
    """A core-metadata client on an empty Redis database."""
    r = aioredis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    return await metadata_app_factory()


async def add_service(client: httpx.AsyncClient, name: str = "device-modbus") -> None:
    r = await client.post(
        "/api/v3/deviceservice",
        json=[
            {
                "apiVersion": "v3",
                "service": {"name": name, "baseAddress": f"http://{name}:59901", "adminState": "UNLOCKED"},
            }
        ],
    )
    assert r.status_code == 207, r.text
    assert r.json()[0]["statusCode"] == 201, r.text


async def upload_profile(client: httpx.AsyncClient, path: Path) -> httpx.Response:
    with path.open("rb") as fh:
        return await client.post("/api/v3/deviceprofile/uploadfile", files={"file": (path.name, fh)})
