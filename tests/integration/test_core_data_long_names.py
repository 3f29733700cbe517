"""core-data refuses 10,000-character names (issue 9, finding 1) with 400 naming the field, in the event body
and in every by-name path, before any key or NATS subject is built from them; events then still flow."""

from __future__ import annotations

import uuid

import httpx
import redis.asyncio as aioredis

from edgeplane_common.bus.nats import NatsMessageBus
from tests.support.core_data import add_request, core_data_settings, event, reading, running

LONG = "n" * 10_000


async def test_long_names_are_400_and_events_still_flow(nats_url: str, redis_url: str, bus: NatsMessageBus) -> None:
    r = aioredis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    async with running(core_data_settings(nats_url, redis_url), bus=bus) as (_, client):
        bad_events = [
            ("deviceName", event(LONG)),
            ("profileName", event(profile=LONG)),
            ("sourceName", event(source=LONG)),
            ("resourceName", event(readings=[reading(LONG)])),
        ]
        for field, ev in bad_events:
            path = f"/api/v3/event/svc/{ev['profileName'][:20]}/{ev['deviceName'][:20]}/{ev['sourceName'][:20]}"
            got = await client.post(path, json=add_request(ev))
            assert got.status_code == 400, got.text[:300]
            assert field in got.json()["message"]
            assert "too long" in got.json()["message"]
        ok = event()
        for index, _ in enumerate(["serviceName", "profileName", "deviceName", "sourceName"]):
            parts = ["svc", ok["profileName"], ok["deviceName"], ok["sourceName"]]
            parts[index] = LONG
            got = await client.post("/api/v3/event/" + "/".join(parts), json=add_request(ok))
            assert got.status_code == 400, got.text[:300]
            assert "too long" in got.json()["message"]
        for path in (
            "/event/device/name/{}",
            "/event/count/device/name/{}",
            "/reading/device/name/{}",
            "/reading/count/device/name/{}",
            "/reading/resourceName/{}",
            "/reading/device/name/dev-1/resourceName/{}",
        ):
            got = await client.get("/api/v3" + path.format(LONG))
            assert got.status_code == 400, (path, got.text[:300])
            assert "too long" in got.json()["message"]
        assert (await client.delete(f"/api/v3/event/device/name/{LONG}")).status_code == 400
        path = f"/api/v3/event/svc/{ok['profileName']}/{ok['deviceName']}/{ok['sourceName']}"
        got = await client.post(path, json=add_request(ok, str(uuid.uuid4())))
        assert got.status_code == 201, got.text
        assert (await client.get("/api/v3/event/count")).json()["count"] == 1


async def test_core_command_paths_refuse_long_names() -> None:
    from core_command.main import create_app

    app = create_app()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://cc") as client:
        for path in (f"/api/v3/device/name/{LONG}", f"/api/v3/device/name/{LONG}/x", f"/api/v3/device/name/x/{LONG}"):
            got = await client.get(path)
            assert got.status_code == 400, got.text[:300]
            assert "too long" in got.json()["message"]
