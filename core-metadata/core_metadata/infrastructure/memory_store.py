"""In-memory MetadataStore for unit tests of the use cases; passes the same contract suite as Redis."""

from __future__ import annotations

from collections.abc import Sequence

from core_metadata.application.ports import MODEL, Entity, Kind, Query, index_terms, query_terms
from edgeplane_common.errors import DuplicateName, NotFound


class InMemoryMetadataStore:
    def __init__(self) -> None:
        # JSON text per entity, as Redis holds it, so callers can never mutate stored state by reference.
        self._data: dict[Kind, dict[str, str]] = {k: {} for k in Kind}
        self._ids: dict[Kind, dict[str, str]] = {k: {} for k in Kind}

    async def add(self, kind: Kind, entity: Entity) -> None:
        if entity.name in self._data[kind]:
            raise DuplicateName(f"{kind.value} name {entity.name!r} already exists")
        if entity.id and entity.id in self._ids[kind]:
            raise DuplicateName(f"{kind.value} id {entity.id!r} already exists")
        self._put(kind, entity)

    async def add_many(self, kind: Kind, entities: Sequence[Entity]) -> None:
        names = [e.name for e in entities]
        ids = [e.id for e in entities if e.id]
        if len(set(names)) < len(names) or len(set(ids)) < len(ids):
            raise DuplicateName(f"{kind.value}: the same name or id twice in one batch")
        taken = [n for n in names if n in self._data[kind]]
        if taken:
            raise DuplicateName(f"{kind.value} name {taken[0]!r} already exists")
        if any(i in self._ids[kind] for i in ids):
            raise DuplicateName(f"{kind.value} id already exists")
        for entity in entities:
            self._put(kind, entity)

    async def existing(self, kind: Kind, names: Sequence[str]) -> set[str]:
        return {n for n in names if n in self._data[kind]}

    async def replace(self, kind: Kind, entity: Entity, *, old_name: str) -> None:
        old = await self.get(kind, old_name)
        del self._data[kind][old_name]
        if old.id:
            self._ids[kind].pop(old.id, None)
        self._put(kind, entity)

    async def delete(self, kind: Kind, name: str) -> Entity:
        old = await self.get(kind, name)
        del self._data[kind][name]
        if old.id:
            self._ids[kind].pop(old.id, None)
        return old

    async def get(self, kind: Kind, name: str) -> Entity:
        raw = self._data[kind].get(name)
        if raw is None:
            raise NotFound(f"{kind.value} {name!r} does not exist")
        return MODEL[kind].model_validate_json(raw)

    async def get_by_id(self, kind: Kind, entity_id: str) -> Entity:
        name = self._ids[kind].get(entity_id)
        if name is None:
            raise NotFound(f"{kind.value} with id {entity_id!r} does not exist")
        return await self.get(kind, name)

    async def exists(self, kind: Kind, name: str) -> bool:
        return name in self._data[kind]

    async def query(self, kind: Kind, query: Query) -> tuple[list[Entity], int]:
        names = self._matching(kind, query)
        end = None if query.limit is None else query.offset + query.limit
        return [await self.get(kind, n) for n in names[query.offset : end]], len(names)

    async def count(self, kind: Kind, query: Query) -> int:
        return len(self._matching(kind, query))

    async def close(self) -> None:
        return None

    def _matching(self, kind: Kind, query: Query) -> list[str]:
        want = query_terms(query)
        model = MODEL[kind]
        return sorted(
            name
            for name, raw in self._data[kind].items()
            if not want or want <= index_terms(kind, model.model_validate_json(raw))
        )

    def _put(self, kind: Kind, entity: Entity) -> None:
        self._data[kind][entity.name] = entity.model_dump_json()
        if entity.id:
            self._ids[kind][entity.id] = entity.name
