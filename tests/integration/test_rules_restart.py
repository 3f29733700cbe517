"""Rules and their started/stopped state survive a restart of the rules engine and of Redis (AOF)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from edgeplane_common.embedded import EmbeddedRedis, free_port
from rules_engine.main import create_app
from rules_engine.settings import RulesEngineSettings
from tests.support.stack import serve


def rule(rule_id: str) -> dict[str, Any]:
    return {"id": rule_id, "sql": "SELECT * FROM events WHERE FlowRate > 1", "actions": [{"log": {}}]}


async def states(nats_url: str, redis_url: str) -> dict[str, str]:
    settings = RulesEngineSettings.model_validate(
        {
            "nats": {"url": nats_url},
            "redis": {"url": redis_url},
            "rules_dir": "",
            "metadata_url": f"http://127.0.0.1:{free_port()}",  # nobody: log actions need no metadata
        }
    )
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url + "/api/v3") as c:
        r = await c.get("/rule/all")
        return {x["id"]: x["status"] for x in r.json()["rules"]}


async def test_rules_survive_a_restart_of_the_engine_and_of_redis(nats_url: str, tmp_path: Path) -> None:
    data = tmp_path / "redis"
    data.mkdir()
    with EmbeddedRedis(data_dir=data) as redis:
        settings = RulesEngineSettings.model_validate(
            {"nats": {"url": nats_url}, "redis": {"url": redis.url}, "rules_dir": ""}
        )
        async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url + "/api/v3") as c:
            for rule_id in ("a", "b", "c"):
                assert (await c.post("/rule", json=rule(rule_id))).status_code == 201
            assert (await c.post("/rule/id/b/stop")).status_code == 200
            assert (await c.delete("/rule/id/c")).status_code == 200
        expected = {"a": "running", "b": "stopped"}
        assert await states(nats_url, redis.url) == expected  # the engine restarted
        port = redis.port
    with EmbeddedRedis(port=port, data_dir=data) as redis:  # Redis restarted from its AOF
        assert await states(nats_url, redis.url) == expected
