"""core-data in tests: settings against the session's servers, an in-process app, events to send."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from fastapi import FastAPI

from core_data.application.ports import EventStore, MetadataSource
from core_data.main import create_app
from core_data.settings import CoreDataSettings
from edgeplane_common.bus import MessageBus

API = "/api/v3"


def core_data_settings(nats_url: str, redis_url: str, **overrides: Any) -> CoreDataSettings:
    """Settings for tests: retention off and no bus ingestion unless a test turns them on."""
    base: dict[str, Any] = {
        "nats": {"url": nats_url},
        "redis": {"url": redis_url},
        "retention": {"enabled": False},
        "ingest": {"enabled": False},
        "metadata_url": "http://127.0.0.1:9",  # nothing listens: retention tests give their own
    }
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            base[key] = {**base[key], **value}
        else:
            base[key] = value
    return CoreDataSettings.model_validate(base)


@asynccontextmanager
async def running(
    settings: CoreDataSettings,
    *,
    store: EventStore | None = None,
    bus: MessageBus | None = None,
    metadata: MetadataSource | None = None,
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """core-data in this event loop (lifespan included) and an HTTP client on it (ASGI, no socket)."""
    app = create_app(settings, store=store, bus=bus, metadata=metadata)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://core-data") as client,
    ):
        yield app, client


def reading(
    resource: str,
    value: str | None = "21.5",
    *,
    value_type: str = "Float64",
    device: str = "dev-1",
    profile: str = "Thermostat",
    origin: int | None = None,
    **extra: Any,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "deviceName": device,
        "resourceName": resource,
        "profileName": profile,
        "valueType": value_type,
        "origin": origin or time.time_ns(),
        **extra,
    }
    if value is not None:
        out["value"] = value
    return out


def event(
    device: str = "dev-1",
    *,
    profile: str = "Thermostat",
    source: str = "Climate",
    origin: int | None = None,
    readings: list[dict[str, Any]] | None = None,
    event_id: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    origin = origin or time.time_ns()
    if readings is None:
        readings = [
            reading("Temperature", "21.5", device=device, profile=profile, origin=origin),
            reading("Humidity", "40", value_type="Int16", device=device, profile=profile, origin=origin),
        ]
    return {
        "apiVersion": "v3",
        "id": event_id or str(uuid.uuid4()),
        "deviceName": device,
        "profileName": profile,
        "sourceName": source,
        "origin": origin,
        "readings": readings,
        **extra,
    }


def add_request(ev: dict[str, Any], request_id: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "v3", "event": ev}
    if request_id:
        body["requestId"] = request_id
    return body


def event_path(ev: dict[str, Any], service: str = "device-virtual") -> str:
    return f"{API}/event/{service}/{ev['profileName']}/{ev['deviceName']}/{ev['sourceName']}"
