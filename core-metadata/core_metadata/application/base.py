"""What every metadata use case shares: the store, the publisher, a clock and one write lock."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from typing import Any, TypeVar, cast

from pydantic import ValidationError
from pydantic.alias_generators import to_camel

from core_metadata.application.pagination import check_range, page_limit
from core_metadata.application.ports import Entity, Kind, MetadataStore, Query, SystemEventPublisher
from edgeplane_common.errors import ContractInvalid
from edgeplane_common.models.metadata import describe_errors
from edgeplane_common.models.names import NameRule, name_problem
from edgeplane_common.models.system_event import SystemEventAction

E = TypeVar("E", bound=Entity)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def validated(model: type[E], data: dict[str, Any], what: str) -> E:
    """`data` as a `model`, or ContractInvalid (400) saying what is wrong: PATCH merges, then validates the
    merged entity, then writes; an invalid merge never reaches the store."""
    try:
        return cast(E, model.model_validate(data))
    except ValidationError as err:
        raise ContractInvalid(f"{what}: {describe_errors(err)}") from None


def refuse_nulls(changes: dict[str, Any], fields: Iterable[str], what: str) -> None:
    """An explicit null for a field the entity cannot do without is a 400, not a silent clear."""
    nulls = [to_camel(f) for f in fields if f in changes and changes[f] is None]
    if nulls:
        raise ContractInvalid(f"{what}: {', '.join(nulls)} cannot be null; leave the key out to keep the current value")


def lookup_name(name: str, what: str, rule: NameRule = NameRule.IDENTIFIER) -> str:
    """A name an update looks its entity up by: one that can never exist is a 400, not a 404."""
    problem = name_problem(name, rule)
    if problem:
        raise ContractInvalid(f"{what} {problem}")
    return name


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
