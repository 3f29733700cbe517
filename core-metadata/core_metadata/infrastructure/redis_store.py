"""MetadataStore on Redis.

Layout per kind K (all keys under `md:`):
  md:K            hash  name -> entity JSON
  md:K:ids        hash  id -> name
  md:K:names      zset  names (score 0, so ordered by name) for stable paging
  md:K:idx:TERM   set   names with that index term (label:x, service:y, profile:z, manufacturer:m, model:n)
Every write is one MULTI/EXEC transaction, so an entity and its indexes never disagree.
"""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from core_metadata.application.ports import MODEL, Entity, Kind, Query, index_terms, query_terms
from edgeplane_common.errors import DuplicateName, NotFound, ServiceUnavailable

_CHUNK = 500  # entities per MULTI/EXEC in add_many


def _k(kind: Kind, *parts: str) -> str:
    return ":".join(["md", kind.value, *parts])


class RedisMetadataStore:
    def __init__(self, client: aioredis.Redis) -> None:
        self.r = client

    async def add(self, kind: Kind, entity: Entity) -> None:
        try:
            if await self.r.hexists(_k(kind), entity.name):
                raise DuplicateName(f"{kind.value} name {entity.name!r} already exists")
            if entity.id and await self.r.hexists(_k(kind, "ids"), entity.id):
                raise DuplicateName(f"{kind.value} id {entity.id!r} already exists")
            async with self.r.pipeline(transaction=True) as tx:
                self._put(tx, kind, entity)
                await tx.execute()
        except RedisError as err:
            raise ServiceUnavailable(f"metadata store unavailable: {err}") from err

    async def add_many(self, kind: Kind, entities: Sequence[Entity]) -> None:
        if not entities:
            return
        names = [e.name for e in entities]
        ids = [e.id for e in entities if e.id]
        if len(set(names)) < len(names) or len(set(ids)) < len(ids):
            raise DuplicateName(f"{kind.value}: the same name or id twice in one batch")
        try:
            async with self.r.pipeline(transaction=False) as pipe:
                pipe.hmget(_k(kind), names)
                pipe.hmget(_k(kind, "ids"), ids or ["\0"])
                by_name, by_id = await pipe.execute()
            taken = [n for n, raw in zip(names, by_name, strict=True) if raw is not None]
            if taken:
                raise DuplicateName(f"{kind.value} name {taken[0]!r} already exists")
            if ids and any(raw is not None for raw in by_id):
                raise DuplicateName(f"{kind.value} id already exists")
            # Chunks keep each transaction (and the server's reply buffer) modest for very large batches.
            for start in range(0, len(entities), _CHUNK):
                async with self.r.pipeline(transaction=True) as tx:
                    for entity in entities[start : start + _CHUNK]:
                        self._put(tx, kind, entity)
                    await tx.execute()
        except RedisError as err:
            raise ServiceUnavailable(f"metadata store unavailable: {err}") from err

    async def existing(self, kind: Kind, names: Sequence[str]) -> set[str]:
        if not names:
            return set()
        raws = await self._call(self.r.hmget(_k(kind), list(names)))
        return {n for n, raw in zip(names, raws, strict=True) if raw is not None}

    async def replace(self, kind: Kind, entity: Entity, *, old_name: str) -> None:
        old = await self.get(kind, old_name)
        try:
            async with self.r.pipeline(transaction=True) as tx:
                self._remove(tx, kind, old)
                self._put(tx, kind, entity)
                await tx.execute()
        except RedisError as err:
            raise ServiceUnavailable(f"metadata store unavailable: {err}") from err

    async def delete(self, kind: Kind, name: str) -> Entity:
        old = await self.get(kind, name)
        try:
            async with self.r.pipeline(transaction=True) as tx:
                self._remove(tx, kind, old)
                await tx.execute()
        except RedisError as err:
            raise ServiceUnavailable(f"metadata store unavailable: {err}") from err
        return old

    async def get(self, kind: Kind, name: str) -> Entity:
        raw = await self._call(self.r.hget(_k(kind), name))
        if raw is None:
            raise NotFound(f"{kind.value} {name!r} does not exist")
        return MODEL[kind].model_validate_json(raw)

    async def get_by_id(self, kind: Kind, entity_id: str) -> Entity:
        name = await self._call(self.r.hget(_k(kind, "ids"), entity_id))
        if name is None:
            raise NotFound(f"{kind.value} with id {entity_id!r} does not exist")
        return await self.get(kind, name.decode())

    async def exists(self, kind: Kind, name: str) -> bool:
        return bool(await self._call(self.r.hexists(_k(kind), name)))

    async def query(self, kind: Kind, query: Query) -> tuple[list[Entity], int]:
        terms = query_terms(query)
        if not terms:
            total = int(await self._call(self.r.zcard(_k(kind, "names"))))
            if query.limit == 0 or query.offset >= total:
                return [], total  # also keeps absurd offsets (beyond Redis' 64-bit range) away from Redis
            end = -1 if query.limit is None else query.offset + query.limit - 1
            names = await self._call(self.r.zrange(_k(kind, "names"), query.offset, end))
        else:
            matched = sorted(await self._call(self.r.sinter([_k(kind, "idx", t) for t in terms])))
            total = len(matched)
            stop = None if query.limit is None else query.offset + query.limit
            names = matched[query.offset : stop]
        if not names:
            return [], total
        raws = await self._call(self.r.hmget(_k(kind), names))
        model = MODEL[kind]
        return [model.model_validate_json(raw) for raw in raws if raw is not None], total

    async def count(self, kind: Kind, query: Query) -> int:
        terms = query_terms(query)
        if not terms:
            return int(await self._call(self.r.zcard(_k(kind, "names"))))
        if len(terms) == 1:
            return int(await self._call(self.r.scard(_k(kind, "idx", next(iter(terms))))))
        return int(await self._call(self.r.sintercard(len(terms), [_k(kind, "idx", t) for t in terms])))

    async def close(self) -> None:
        await self.r.aclose()

    @staticmethod
    async def _call(awaitable: Awaitable[Any]) -> Any:
        try:
            return await awaitable
        except RedisError as err:
            raise ServiceUnavailable(f"metadata store unavailable: {err}") from err

    @staticmethod
    def _put(tx: aioredis.client.Pipeline, kind: Kind, entity: Entity) -> None:
        tx.hset(_k(kind), entity.name, entity.model_dump_json())
        if entity.id:
            tx.hset(_k(kind, "ids"), entity.id, entity.name)
        tx.zadd(_k(kind, "names"), {entity.name: 0})
        for term in index_terms(kind, entity):
            tx.sadd(_k(kind, "idx", term), entity.name)

    @staticmethod
    def _remove(tx: aioredis.client.Pipeline, kind: Kind, entity: Entity) -> None:
        tx.hdel(_k(kind), entity.name)
        if entity.id:
            tx.hdel(_k(kind, "ids"), entity.id)
        tx.zrem(_k(kind, "names"), entity.name)
        for term in index_terms(kind, entity):
            tx.srem(_k(kind, "idx", term), entity.name)
