"""Retention end to end: core-metadata (real HTTP) holds the devices' autoEvent retention, core-data's
scheduled task reads it and purges Redis: exactly the events it should, and nothing else."""

from __future__ import annotations

import time
from typing import Any

import httpx
import redis.asyncio as aioredis

from core_data.application.ports import EventQuery
from core_metadata.main import create_app as create_metadata
from edgeplane_common.bus.nats import NatsMessageBus
from tests.support.core_data import core_data_settings, event, event_path, reading, running
from tests.support.metadata import metadata_settings
from tests.support.stack import serve, wait_until

S = 1_000_000_000


def profile() -> dict[str, Any]:
    resources = [
        {"name": n, "isHidden": False, "properties": {"valueType": "Float64", "readWrite": "R"}, "attributes": {}}
        for n in ("Temp", "Pressure", "Level", "Flow")
    ]
    return {"name": "Tank", "deviceResources": resources, "deviceCommands": []}


def tank(name: str, auto_events: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": name,
        "serviceName": "device-virtual",
        "profileName": "Tank",
        "adminState": "UNLOCKED",
        "operatingState": "UP",
        "protocols": {"other": {"Address": "sim"}},
        "autoEvents": auto_events,
    }


async def provision(metadata: httpx.AsyncClient) -> None:
    r = await metadata.post(
        "/api/v3/deviceservice",
        json=[
            {
                "apiVersion": "v3",
                "service": {"name": "device-virtual", "baseAddress": "http://x:1", "adminState": "UNLOCKED"},
            }
        ],
    )
    assert r.json()[0]["statusCode"] == 201, r.text
    r = await metadata.post("/api/v3/deviceprofile", json=[{"apiVersion": "v3", "profile": profile()}])
    assert r.json()[0]["statusCode"] == 201, r.text
    auto_events = [
        # over maxCap (4): keep the 2 newest, whatever their age (duration 0: count only)
        {"interval": "1s", "sourceName": "Temp", "retention": {"maxCap": 4, "minCap": 2, "duration": "0"}},
        # older than 30 s go, except the newest of those (minCap 1)
        {"interval": "1s", "sourceName": "Pressure", "retention": {"minCap": 1, "duration": "30s"}},
        # no retention of its own: core-data's defaults (keep 60 s and 1 older)
        {"interval": "1s", "sourceName": "Level"},
        # far under its high watermark: untouched although old
        {"interval": "1s", "sourceName": "Flow", "retention": {"maxCap": 100, "minCap": 1, "duration": "1s"}},
    ]
    r = await metadata.post(
        "/api/v3/device",
        params={"bypassValidation": "true"},
        json=[{"apiVersion": "v3", "device": tank("tank-1", auto_events)}],
    )
    assert r.json()[0]["statusCode"] == 201, r.text


async def test_scheduled_retention_removes_what_it_should_and_nothing_else(
    nats_url: str, redis_url: str, bus: NatsMessageBus
) -> None:
    r = aioredis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    async with serve(create_metadata(metadata_settings(nats_url, redis_url)), None) as metadata_url:
        async with httpx.AsyncClient(base_url=metadata_url) as metadata:
            await provision(metadata)

        settings = core_data_settings(
            nats_url,
            redis_url,
            metadata_url=metadata_url,
            retention={
                "enabled": True,
                "interval": "300ms",
                "default_max_cap": -1,
                "default_min_cap": 1,
                "default_duration": "60s",
            },
        )
        now = time.time_ns()
        ages: dict[tuple[str, str], list[int]] = {
            ("tank-1", "Temp"): [1, 2, 3, 4, 5, 6],
            ("tank-1", "Pressure"): [5, 40, 50],
            ("tank-1", "Level"): [10, 70, 80],
            ("tank-1", "Flow"): [100, 200, 300, 400, 500],
            # a device core-metadata does not know: the defaults too
            ("old-tank", "Level"): [10, 70, 80],
        }
        keep: dict[tuple[str, str], list[int]] = {
            ("tank-1", "Temp"): [1, 2],
            ("tank-1", "Pressure"): [5, 40],
            ("tank-1", "Level"): [10, 70],
            ("tank-1", "Flow"): [100, 200, 300, 400, 500],
            ("old-tank", "Level"): [10, 70],
        }
        async with running(settings, bus=bus) as (app, client):
            ids: dict[tuple[str, str, int], str] = {}
            for (dev, source), source_ages in ages.items():
                for age in source_ages:
                    origin = now - age * S
                    ev = event(
                        dev,
                        profile="Tank",
                        source=source,
                        origin=origin,
                        readings=[reading(source, "1.5", device=dev, profile="Tank", origin=origin)],
                    )
                    resp = await client.post(event_path(ev), json={"apiVersion": "v3", "event": ev})
                    assert resp.status_code == 201, resp.text
                    ids[(dev, source, age)] = ev["id"]

            store = app.state.managers.events.store
            expected_total = sum(len(v) for v in keep.values())
            await wait_until(lambda: _total(store, expected_total), timeout=15)
            for (dev, source), kept in keep.items():
                docs = await store.events(EventQuery(device=dev, source=source))
                assert [d["id"] for d in docs] == [ids[(dev, source, a)] for a in kept], (dev, source)
            # readings went with their events
            assert (await client.get("/api/v3/reading/count")).json()["count"] == expected_total
            # later passes remove nothing more
            before = await store.count_events(EventQuery())
            await app.state.retention.run_once()
            assert await store.count_events(EventQuery()) == before


async def _total(store: Any, expected: int) -> bool:
    return bool(await store.count_events(EventQuery()) == expected)
