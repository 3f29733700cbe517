"""Bad input never answers 500 and never stores anything: core-data over real HTTP (uvicorn), real Redis and
NATS. Over REST: malformed JSON, wrong content types, events above MaxEventSize (with and without a
Content-Length), duplicate ids, invalid events and parameters. Over the bus: poison messages are dropped
(acknowledged) without blocking the events behind them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import nats
import pytest
import redis.asyncio as aioredis

from core_data.main import create_app
from edgeplane_common.bus import MessageEnvelope, Topics
from edgeplane_common.bus.nats import NatsMessageBus
from tests.support.core_data import core_data_settings, event, event_path, reading
from tests.support.stack import serve, wait_until

MAX_EVENT_KB = 4


@pytest.fixture
async def service(nats_url: str, redis_url: str, bus: NatsMessageBus) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    r = aioredis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    tag = uuid.uuid4().hex[:8]
    settings = core_data_settings(
        nats_url,
        redis_url,
        max_event_size=MAX_EVENT_KB,
        ingest={
            "enabled": True,
            "durable": f"core-data-bad-{tag}",
            "topic": f"edgex.events.device.bad-{tag}.>",
            "consumers": 2,
        },
    )
    async with (
        serve(create_app(settings, bus=bus)) as url,
        httpx.AsyncClient(base_url=url + "/api/v3", timeout=10) as client,
    ):
        yield client, f"bad-{tag}"
    nc = await nats.connect(nats_url)
    await nc.jetstream().delete_consumer(Topics.EVENTS_STREAM, f"core-data-bad-{tag}")
    await nc.close()


async def counts(client: httpx.AsyncClient) -> tuple[int, int]:
    return (await client.get("/event/count")).json()["count"], (await client.get("/reading/count")).json()["count"]


def post(client: httpx.AsyncClient, ev: dict[str, Any], **kw: Any) -> Any:
    return client.post(event_path(ev).removeprefix("/api/v3"), **kw)


async def test_bad_rest_input_is_a_clear_4xx_and_stores_nothing(service: tuple[httpx.AsyncClient, str]) -> None:
    client, _ = service
    good = event("dev-1")
    r = await post(client, good, json={"apiVersion": "v3", "event": good})
    assert r.status_code == 201, r.text
    assert await counts(client) == (1, 2)

    big = event("dev-1", readings=[reading(f"R{i}", "1.5") for i in range(60)])
    wrong_device = event("dev-2")
    invalid = event("dev-1")
    invalid["readings"][0]["value"] = "very hot"

    async def chunked() -> AsyncIterator[bytes]:
        yield b'{"event": {"id": "'
        yield b"x" * (MAX_EVENT_KB * 1024)
        yield b'"}}'

    cases: list[tuple[str, dict[str, Any], int, str]] = [
        (
            "malformed JSON",
            {"content": b'{"event": {', "headers": {"Content-Type": "application/json"}},
            400,
            "not valid JSON",
        ),
        ("empty body", {"content": b"", "headers": {"Content-Type": "application/json"}}, 400, "not valid JSON"),
        ("a JSON array", {"json": [good]}, 400, "AddEventRequest"),
        ("no event", {"json": {"apiVersion": "v3"}}, 400, "has no event"),
        ("plain text", {"content": b"hello", "headers": {"Content-Type": "text/plain"}}, 415, "Content-Type"),
        ("XML", {"content": b"<event/>", "headers": {"Content-Type": "application/xml"}}, 415, "Content-Type"),
        ("CBOR", {"content": b"\xa1", "headers": {"Content-Type": "application/cbor"}}, 415, "application/json"),
        ("above MaxEventSize", {"json": {"apiVersion": "v3", "event": big}}, 413, "MaxEventSize"),
        (
            "above MaxEventSize, chunked",
            {"content": chunked(), "headers": {"Content-Type": "application/json"}},
            413,
            "MaxEventSize",
        ),
        ("duplicate id", {"json": {"apiVersion": "v3", "event": good}}, 409, good["id"]),
        ("path/body mismatch", {"json": {"apiVersion": "v3", "event": wrong_device}}, 400, "does not match"),
        ("invalid value", {"json": {"apiVersion": "v3", "event": invalid}}, 400, "does not match valueType"),
        ("bad requestId", {"json": {"apiVersion": "v3", "requestId": "r-1", "event": good}}, 400, "requestId"),
    ]
    for name, kw, status, text in cases:
        r = await post(client, good, **kw)
        assert r.status_code == status, (name, r.status_code, r.text)
        body = r.json()
        assert (body["statusCode"], body["apiVersion"]) == (status, "v3"), name
        assert text in body["message"], (name, body["message"])
    assert await counts(client) == (1, 2), "nothing of the bad requests was stored"

    for path, params in [
        ("/event/all", {"offset": "x"}),
        ("/event/all", {"limit": "-7"}),
        ("/event/all", {"offset": str(10**40)}),
        ("/event/all", {"numeric": "1"}),
        ("/event/id/../..", {}),
        ("/event/id/123", {}),
        ("/event/start/9/end/1", {}),
        ("/event/start/1/end/9e9", {}),
        ("/reading/all", {"aggregateFunc": "MODE"}),
        ("/reading/device/name/dev-1", {"offset": "-2"}),
    ]:
        r = await client.get(path, params=params)
        assert 400 <= r.status_code < 500, (path, params, r.status_code, r.text)
        assert r.json()["message"], (path, params)
    # a range end beyond 64 bits is simply "everything"
    r = await client.get("/reading/start/0/end/99999999999999999999999999")
    assert (r.status_code, r.json()["totalCount"]) == (200, 2)
    r = await client.request("GET", "/reading/device/name/dev-1/start/0/end/1", content=b"[1]")
    assert r.status_code == 400
    for path in ("/event/age/-5", "/event/age/x", "/event/id/nope"):
        r = await client.delete(path)
        assert r.status_code == 400, (path, r.text)
    assert await counts(client) == (1, 2)


async def test_poison_messages_are_dropped_without_blocking(
    service: tuple[httpx.AsyncClient, str], bus: NatsMessageBus, nats_url: str
) -> None:
    client, svc = service
    topic = Topics.events(svc, "Thermostat", "dev-1", "Climate")
    invalid = event("dev-1")
    invalid["readings"] = []
    await bus.publish_durable(topic, MessageEnvelope(payload=invalid))
    await bus.publish_durable(topic, MessageEnvelope(payload="{not json"))
    await bus.publish_durable(topic, MessageEnvelope(payload={"event": "nope"}))
    nc = await nats.connect(nats_url)
    await nc.jetstream().publish(topic, b"\x00 not an envelope")  # the bus itself terminates this one
    await nc.close()
    good = event("dev-1")
    await bus.publish_durable(topic, MessageEnvelope(payload=good))
    await wait_until(lambda: _has(client, good["id"]), timeout=15)
    assert await counts(client) == (1, 2)


async def _has(client: httpx.AsyncClient, event_id: str) -> bool:
    return (await client.get(f"/event/id/{event_id}")).status_code == 200
