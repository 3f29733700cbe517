"""Rules in Redis: one hash, rule id -> {"rule": <rule JSON>, "running": bool}. Every write is one command."""

from __future__ import annotations

from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from edgeplane_common.errors import ServiceUnavailable
from rules_engine.application.ports import StoredRule

KEY = "edgeplane:rules-engine:rules"


def _encode(rule: StoredRule) -> bytes:
    return orjson.dumps({"rule": rule.definition, "running": rule.running})


def _decode(raw: Any) -> StoredRule:
    data = orjson.loads(raw)
    return StoredRule(data["rule"], bool(data.get("running")))


class RedisRuleStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.client = client

    async def all(self) -> list[StoredRule]:
        try:
            raw = await self.client.hgetall(KEY)
        except RedisError as err:
            raise ServiceUnavailable(f"Redis: {err}") from err
        return [_decode(v) for _, v in sorted(raw.items())]

    async def get(self, rule_id: str) -> StoredRule | None:
        try:
            raw = await self.client.hget(KEY, rule_id)
        except RedisError as err:
            raise ServiceUnavailable(f"Redis: {err}") from err
        return None if raw is None else _decode(raw)

    async def add(self, rule_id: str, rule: StoredRule) -> bool:
        try:
            return bool(await self.client.hsetnx(KEY, rule_id, _encode(rule)))
        except RedisError as err:
            raise ServiceUnavailable(f"Redis: {err}") from err

    async def put(self, rule_id: str, rule: StoredRule) -> None:
        try:
            await self.client.hset(KEY, rule_id, _encode(rule))
        except RedisError as err:
            raise ServiceUnavailable(f"Redis: {err}") from err

    async def delete(self, rule_id: str) -> bool:
        try:
            return bool(await self.client.hdel(KEY, rule_id))
        except RedisError as err:
            raise ServiceUnavailable(f"Redis: {err}") from err

    async def close(self) -> None:
        await self.client.aclose()
