"""One suite for every MetadataStore: the Redis adapter (real server) and the in-memory fake."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from core_metadata.application.ports import Kind, MetadataStore, Query
from core_metadata.infrastructure.memory_store import InMemoryMetadataStore
from core_metadata.infrastructure.redis_store import RedisMetadataStore
from edgeplane_common.errors import DuplicateName, NotFound
from edgeplane_common.models import Device, DeviceProfile


@pytest.fixture(params=["redis", "memory"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[MetadataStore]:
    if request.param == "memory":
        yield InMemoryMetadataStore()
        return
    client = aioredis.from_url(request.getfixturevalue("redis_url"))
    await client.flushdb()
    s = RedisMetadataStore(client)
    yield s
    await s.close()


def device(
    name: str,
    *,
    service: str = "svc",
    profile: str | None = "prof",
    labels: list[str] | None = None,
    id_: str | None = None,
) -> Device:
    return Device(name=name, service_name=service, profile_name=profile, labels=labels or [], id=id_ or f"id-{name}")


async def test_add_get_by_name_and_id(store: MetadataStore) -> None:
    await store.add(Kind.DEVICE, device("d1"))
    got = await store.get(Kind.DEVICE, "d1")
    assert isinstance(got, Device)
    assert got.name == "d1"
    assert (await store.get_by_id(Kind.DEVICE, "id-d1")).name == "d1"
    assert await store.exists(Kind.DEVICE, "d1")
    assert not await store.exists(Kind.DEVICE, "d2")


async def test_duplicate_name_or_id_is_refused_and_original_kept(store: MetadataStore) -> None:
    await store.add(Kind.DEVICE, device("d1", labels=["a"]))
    with pytest.raises(DuplicateName):
        await store.add(Kind.DEVICE, device("d1", labels=["b"], id_="other"))
    with pytest.raises(DuplicateName):
        await store.add(Kind.DEVICE, device("d2", id_="id-d1"))
    assert (await store.get(Kind.DEVICE, "d1")).labels == ["a"]
    assert await store.count(Kind.DEVICE, Query()) == 1


async def test_missing_entities_raise_not_found(store: MetadataStore) -> None:
    with pytest.raises(NotFound):
        await store.get(Kind.DEVICE, "nope")
    with pytest.raises(NotFound):
        await store.get_by_id(Kind.DEVICE, "nope")
    with pytest.raises(NotFound):
        await store.delete(Kind.DEVICE, "nope")
    with pytest.raises(NotFound):
        await store.replace(Kind.DEVICE, device("x"), old_name="nope")


async def test_kinds_are_separate_namespaces(store: MetadataStore) -> None:
    await store.add(Kind.DEVICE, device("same"))
    await store.add(Kind.PROFILE, DeviceProfile(name="same", id="p-same"))
    assert isinstance(await store.get(Kind.PROFILE, "same"), DeviceProfile)
    assert await store.count(Kind.PROFILE, Query()) == 1


async def test_query_filters_by_every_index_and_pages_by_name(store: MetadataStore) -> None:
    for i, (svc, prof, labels) in enumerate(
        [("s1", "p1", ["a"]), ("s1", "p2", ["a", "b"]), ("s2", "p1", ["b"]), ("s2", "p2", [])]
    ):
        await store.add(Kind.DEVICE, device(f"d{3 - i}", service=svc, profile=prof, labels=labels))
    names = lambda items: [e.name for e in items]  # noqa: E731
    items, total = await store.query(Kind.DEVICE, Query())
    assert (names(items), total) == (["d0", "d1", "d2", "d3"], 4)
    items, total = await store.query(Kind.DEVICE, Query(offset=1, limit=2))
    assert (names(items), total) == (["d1", "d2"], 4)
    items, total = await store.query(Kind.DEVICE, Query(service_name="s1"))
    assert (names(items), total) == (["d2", "d3"], 2)
    items, _ = await store.query(Kind.DEVICE, Query(labels=["a", "b"]))
    assert names(items) == ["d2"]
    items, _ = await store.query(Kind.DEVICE, Query(service_name="s2", profile_name="p1"))
    assert names(items) == ["d1"]
    assert await store.count(Kind.DEVICE, Query(profile_name="p2")) == 2
    assert await store.count(Kind.DEVICE, Query(labels=["b"], service_name="s2")) == 1
    items, total = await store.query(Kind.DEVICE, Query(labels=["zzz"]))
    assert (items, total) == ([], 0)


async def test_replace_moves_indexes_and_supports_rename(store: MetadataStore) -> None:
    await store.add(Kind.DEVICE, device("d1", service="s1", labels=["old"]))
    await store.replace(Kind.DEVICE, device("d1-new", service="s2", labels=["new"], id_="id-d1"), old_name="d1")
    assert not await store.exists(Kind.DEVICE, "d1")
    assert (await store.get_by_id(Kind.DEVICE, "id-d1")).name == "d1-new"
    assert await store.count(Kind.DEVICE, Query(service_name="s1")) == 0
    assert await store.count(Kind.DEVICE, Query(labels=["old"])) == 0
    assert await store.count(Kind.DEVICE, Query(service_name="s2", labels=["new"])) == 1


async def test_delete_removes_entity_and_indexes(store: MetadataStore) -> None:
    await store.add(Kind.DEVICE, device("d1", labels=["a"]))
    deleted = await store.delete(Kind.DEVICE, "d1")
    assert deleted.name == "d1"
    assert await store.count(Kind.DEVICE, Query()) == 0
    assert await store.count(Kind.DEVICE, Query(labels=["a"])) == 0
    with pytest.raises(NotFound):
        await store.get_by_id(Kind.DEVICE, "id-d1")


async def test_profiles_are_indexed_by_manufacturer_and_model(store: MetadataStore) -> None:
    await store.add(Kind.PROFILE, DeviceProfile(name="a", id="1", manufacturer="Acme", model="X"))
    await store.add(Kind.PROFILE, DeviceProfile(name="b", id="2", manufacturer="Acme", model="Y"))
    items, total = await store.query(Kind.PROFILE, Query(manufacturer="Acme", model="Y"))
    assert ([p.name for p in items], total) == (["b"], 1)
    assert await store.count(Kind.PROFILE, Query(manufacturer="Acme")) == 2
    assert await store.count(Kind.PROFILE, Query(model="X")) == 1


async def test_stored_entities_are_copies(store: MetadataStore) -> None:
    d = device("d1", labels=["a"])
    await store.add(Kind.DEVICE, d)
    d.labels.append("mutated")
    assert (await store.get(Kind.DEVICE, "d1")).labels == ["a"]


async def test_add_many_stores_all_or_refuses_all(store: MetadataStore) -> None:
    await store.add_many(Kind.DEVICE, [device("b1"), device("b2", labels=["x"])])
    assert await store.existing(Kind.DEVICE, ["b1", "b2", "b3"]) == {"b1", "b2"}
    assert await store.count(Kind.DEVICE, Query(labels=["x"])) == 1
    assert (await store.get_by_id(Kind.DEVICE, "id-b2")).name == "b2"
    with pytest.raises(DuplicateName):
        await store.add_many(Kind.DEVICE, [device("b3"), device("b1", id_="fresh")])
    with pytest.raises(DuplicateName):
        await store.add_many(Kind.DEVICE, [device("b4"), device("b5", id_="id-b1")])
    with pytest.raises(DuplicateName):
        await store.add_many(Kind.DEVICE, [device("b6"), device("b6", id_="other")])
    assert await store.existing(Kind.DEVICE, ["b3", "b4", "b5", "b6"]) == set()
    await store.add_many(Kind.DEVICE, [])
    assert await store.existing(Kind.DEVICE, []) == set()
