"""What every metadata use case shares: the store, the publisher, a clock and one write lock."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import TypeVar, cast

from core_metadata.application.pagination import check_range, page_limit
from core_metadata.application.ports import Entity, Kind, MetadataStore, Query, SystemEventPublisher
from edgeplane_common.models.system_event import SystemEventAction

E = TypeVar("E", bound=Entity)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class UseCase:
    def __init__(
        self,
        store: MetadataStore,
        publisher: SystemEventPublisher,
        *,
        lock: asyncio.Lock,
        max_result_count: int = 1024,
    ) -> None:
        self.store = store
        self.publisher = publisher
        # One lock for all metadata writes: name uniqueness and in-use checks must not race.
        self.lock = lock
        self.max_result_count = max_result_count

    def stamp_new(self, entity: E) -> E:
        ts = now_ms()
        return cast(E, entity.model_copy(update={"id": entity.id or str(uuid.uuid4()), "created": ts, "modified": ts}))

    def stamp_update(self, entity: E, old: Entity) -> E:
        return cast(E, entity.model_copy(update={"id": old.id, "created": old.created, "modified": now_ms()}))

    async def page(self, kind: Kind, query: Query, offset: int, limit: int) -> tuple[list[Entity], int]:
        query = query.model_copy(update={"offset": offset, "limit": page_limit(offset, limit, self.max_result_count)})
        items, total = await self.store.query(kind, query)
        check_range(offset, total)
        return items, total

    async def emit(self, kind: Kind, action: SystemEventAction, entity: Entity) -> None:
        await self.publisher.publish(kind, action, entity)
