"""The rules engine's REST API (EdgeX style): create 201 / 409 / 400 with the SQL position, list, get, update,
start/stop, status, delete; and events from the bus reach the rules (in-memory bus and store)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from edgeplane_common.bus import MessageEnvelope, Topics
from edgeplane_common.bus.memory import InMemoryBus
from rules_engine.infrastructure.memory_store import InMemoryRuleStore
from rules_engine.main import create_app
from rules_engine.settings import RulesEngineSettings
from tests.support.rules import Directory, Http
from tests.support.stack import wait_until

RULE: dict[str, Any] = {
    "id": "hot",
    "sql": "SELECT FlowRate AS flow FROM events WHERE deviceName = 'plc1' AND FlowRate > 100",
    "actions": [{"publish": {"template": {"flow": "{{.flow}}"}}}],
}


@pytest.fixture
async def api() -> AsyncIterator[tuple[httpx.AsyncClient, InMemoryBus]]:
    bus = InMemoryBus()
    await bus.connect()
    app = create_app(
        RulesEngineSettings(rules_dir=""),  # type: ignore[arg-type]
        store=InMemoryRuleStore(),
        bus=bus,
        metadata=Directory(),
        http=Http([200]),
    )
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://r") as c:
        yield c, bus
    await bus.close()


async def test_rule_lifecycle_over_rest(api: tuple[httpx.AsyncClient, InMemoryBus]) -> None:
    c, _ = api
    r = await c.post("/api/v3/rule", json=RULE)
    assert r.status_code == 201, r.text
    assert r.json() == {"apiVersion": "v3", "statusCode": 201, "id": "hot"}
    assert (await c.post("/api/v3/rule", json=RULE)).status_code == 409
    r = await c.get("/api/v3/rule/all")
    assert r.json()["totalCount"] == 1
    assert r.json()["rules"][0]["status"] == "running"
    r = await c.get("/api/v3/rule/id/hot")
    assert r.json()["rule"]["sql"] == RULE["sql"]
    assert (await c.post("/api/v3/rule/id/hot/stop")).status_code == 200
    assert (await c.get("/api/v3/rule/id/hot/status")).json()["status"]["status"] == "stopped"
    assert (await c.post("/api/v3/rule/id/hot/start")).status_code == 200
    changed = {k: v for k, v in RULE.items() if k != "id"} | {"sql": "SELECT FlowRate AS flow FROM events"}
    assert (await c.put("/api/v3/rule/id/hot", json=changed)).status_code == 200
    assert (await c.get("/api/v3/rule/id/hot")).json()["rule"]["sql"] == "SELECT FlowRate AS flow FROM events"
    assert (await c.delete("/api/v3/rule/id/hot")).status_code == 200
    for method, path in [
        ("GET", "/id/hot"),
        ("GET", "/id/hot/status"),
        ("POST", "/id/hot/start"),
        ("DELETE", "/id/hot"),
    ]:
        r = await c.request(method, "/api/v3/rule" + path)
        assert r.status_code == 404, (method, path)
        assert r.json()["message"] == "rule 'hot' does not exist"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({**RULE, "sql": "SELECT FlowRate FROM events WHERE FlowRate >"}, "line 1, column 44"),
        ({**RULE, "sql": "SELECT x FROM nowhere"}, "unknown stream 'nowhere'"),
        ({**RULE, "sql": "SELECT lol(x) FROM events"}, "unknown function lol()"),
        ({**RULE, "sql": "SELECT avg(x) FROM events GROUP BY TumblingWindow(10)"}, "needs a time unit"),
        ({**RULE, "actions": [{"publish": {"template": "{{.nope}}"}}]}, "template names column 'nope'"),
        ({**RULE, "id": "a b"}, "invalid rule: id"),
        ({"id": "x", "actions": [{"log": {}}]}, "invalid rule: sql"),
    ],
)
async def test_bad_rules_answer_400_with_the_reason(
    api: tuple[httpx.AsyncClient, InMemoryBus], body: dict[str, Any], fragment: str
) -> None:
    c, _ = api
    r = await c.post("/api/v3/rule", json=body)
    assert r.status_code == 400, r.text
    assert fragment in r.json()["message"]
    assert (await c.post("/api/v3/rule", content=b"{")).status_code == 400


async def test_events_on_the_bus_reach_the_rules(api: tuple[httpx.AsyncClient, InMemoryBus]) -> None:
    c, bus = api
    assert (await c.post("/api/v3/rule", json=RULE)).status_code == 201
    alerts: list[Any] = []

    async def on_alert(env: MessageEnvelope) -> None:
        alerts.append(env.payload)

    await bus.subscribe(Topics.rule_alerts("hot"), on_alert)
    event = {
        "apiVersion": "v3",
        "id": str(uuid.uuid4()),
        "deviceName": "plc1",
        "profileName": "Edgeplane-Demo-PLC",
        "sourceName": "FlowRate",
        "origin": 1,
        "readings": [{"resourceName": "FlowRate", "valueType": "Uint16", "value": "420"}],
    }
    topic = Topics.events("device-modbus", "Edgeplane-Demo-PLC", "plc1", "FlowRate")
    await bus.publish(topic, MessageEnvelope(payload=event))
    await bus.publish(topic, MessageEnvelope(payload="not an event"))
    await wait_until(lambda: alerts)
    assert alerts == [{"flow": 420}]
    status = (await c.get("/api/v3/rule/id/hot/status")).json()["status"]
    assert (status["recordsIn"], status["matched"], status["actionsFired"]) == (1, 1, 1)
    engine = (await c.get("/api/v3/rule/engine")).json()
    assert (engine["eventsIn"], engine["eventsInvalid"], engine["rulesRunning"]) == (1, 1, 1)
