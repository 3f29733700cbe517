"""One suite for every EventStore: the Redis adapter (real server) and the in-memory fake."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis

from core_data.application.ports import EventQuery, EventStore, ReadingQuery
from core_data.infrastructure.memory_store import InMemoryEventStore
from core_data.infrastructure.redis_store import RedisEventStore
from edgeplane_common.edgex.events import EventRecord, validate_event
from tests.support.core_data import event, reading

T0 = 1_700_000_000_000_000_000


@pytest.fixture(params=["redis", "memory"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[EventStore]:
    if request.param == "memory":
        yield InMemoryEventStore()
        return
    client = aioredis.from_url(request.getfixturevalue("redis_url"))
    await client.flushdb()
    s = RedisEventStore(client)
    yield s
    await s.close()


def rec(
    device: str,
    origin: int,
    resources: dict[str, tuple[str, str | None]] | None = None,
    *,
    source: str = "src",
    event_id: str | None = None,
) -> EventRecord:
    """An event of `device` at `origin` with one reading per resource: {name: (valueType, value)}."""
    resources = resources or {"Temp": ("Float64", "1.5")}
    readings = [
        reading(name, value, value_type=vt, device=device, origin=origin) for name, (vt, value) in resources.items()
    ]
    return validate_event(event(device, source=source, origin=origin, readings=readings, event_id=event_id))


def ids(docs: list[dict[str, Any]]) -> list[str]:
    return [d["id"] for d in docs]


async def test_add_get_and_idempotency(store: EventStore) -> None:
    a = rec("d1", T0)
    assert await store.add([a]) == [True]
    assert await store.get(a.id) == a.doc
    assert await store.get(str(uuid.uuid4())) is None
    # The same id again (a redelivery, or another event reusing it): nothing written, not even its readings.
    other = rec("d1", T0 + 5, {"Temp": ("Float64", "9"), "Extra": ("Int8", "1")}, event_id=a.id)
    b = rec("d1", T0 + 1)
    assert await store.add([other, b, b]) == [False, True, False]
    assert await store.count_events(EventQuery()) == 2
    assert await store.count_readings(ReadingQuery()) == 2
    assert await store.get(a.id) == a.doc
    assert await store.count_readings(ReadingQuery(resources=("Extra",))) == 0
    assert await store.add([]) == []


async def test_events_newest_first_paged_and_filtered(store: EventStore) -> None:
    records = [rec("d1", T0 + 10, source="s1"), rec("d2", T0 + 20), rec("d1", T0 + 30, source="s2"), rec("d1", T0 + 40)]
    await store.add(records)
    r1, r2, r3, r4 = records
    assert ids(await store.events(EventQuery())) == [r4.id, r3.id, r2.id, r1.id]
    assert ids(await store.events(EventQuery(offset=1, limit=2))) == [r3.id, r2.id]
    assert ids(await store.events(EventQuery(offset=4))) == []
    assert ids(await store.events(EventQuery(offset=10**30))) == []
    assert ids(await store.events(EventQuery(limit=0))) == []
    # a device's events come from all its sources, merged newest first
    assert ids(await store.events(EventQuery(device="d1"))) == [r4.id, r3.id, r1.id]
    assert ids(await store.events(EventQuery(device="d1", offset=1, limit=1))) == [r3.id]
    assert ids(await store.events(EventQuery(device="d1", source="s1"))) == [r1.id]
    assert ids(await store.events(EventQuery(device="nobody"))) == []
    assert await store.count_events(EventQuery(device="d1")) == 3
    assert await store.count_events(EventQuery(device="d1", source="src")) == 1
    assert await store.count_events(EventQuery(device="nobody")) == 0
    # time ranges include both ends, to the nanosecond
    assert ids(await store.events(EventQuery(start=T0 + 20, end=T0 + 30))) == [r3.id, r2.id]
    assert ids(await store.events(EventQuery(start=T0 + 21, end=T0 + 29))) == []
    assert ids(await store.events(EventQuery(start=T0 + 11))) == [r4.id, r3.id, r2.id]
    assert ids(await store.events(EventQuery(end=T0 + 10))) == [r1.id]
    assert ids(await store.events(EventQuery(device="d1", start=T0 + 10, end=T0 + 35, offset=1))) == [r1.id]
    assert await store.count_events(EventQuery(start=T0 + 20, end=T0 + 40)) == 3
    assert await store.count_events(EventQuery(device="d1", end=T0 + 30)) == 2
    # whatever the bounds (int64 or not)
    assert await store.count_events(EventQuery(start=-(10**30), end=10**30)) == 4


async def test_origins_are_exact_and_ties_ordered(store: EventStore) -> None:
    # 1 ns apart near 2^61: a double score would merge these.
    base = 2**61
    records = [rec("d", base + i) for i in range(3)] + [rec("d", -5), rec("d", base + 1)]
    await store.add(records)
    got = await store.events(EventQuery(start=base + 1, end=base + 1))
    assert sorted(ids(got)) == sorted([records[1].id, records[4].id])
    assert [d["origin"] for d in await store.events(EventQuery())] == [base + 2, base + 1, base + 1, base, -5]
    assert ids(await store.events(EventQuery(end=0))) == [records[3].id]
    # the same order on every call (ties broken by id)
    assert ids(await store.events(EventQuery())) == ids(await store.events(EventQuery()))


async def test_readings_by_device_resource_and_time(store: EventStore) -> None:
    e1 = rec("d1", T0 + 10, {"Temp": ("Float64", "1"), "Hum": ("Int16", "40")})
    e2 = rec("d2", T0 + 20, {"Temp": ("Float64", "2")})
    e3 = rec("d1", T0 + 30, {"Temp": ("Float64", "3"), "State": ("String", "on")}, source="other")
    await store.add([e1, e2, e3])

    def values(docs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
        return [(d["deviceName"], d["resourceName"], d["value"]) for d in docs]

    every = await store.readings(ReadingQuery())
    # newest first; within one event, the last reading first
    assert values(every) == [
        ("d1", "State", "on"),
        ("d1", "Temp", "3"),
        ("d2", "Temp", "2"),
        ("d1", "Hum", "40"),
        ("d1", "Temp", "1"),
    ]
    assert every[0] == e3.doc["readings"][1]
    assert await store.count_readings(ReadingQuery()) == 5
    assert values(await store.readings(ReadingQuery(offset=1, limit=2))) == [("d1", "Temp", "3"), ("d2", "Temp", "2")]
    assert values(await store.readings(ReadingQuery(device="d1"))) == [
        ("d1", "State", "on"),
        ("d1", "Temp", "3"),
        ("d1", "Hum", "40"),
        ("d1", "Temp", "1"),
    ]
    assert values(await store.readings(ReadingQuery(device="d1", offset=2, limit=1))) == [("d1", "Hum", "40")]
    assert await store.count_readings(ReadingQuery(device="d1")) == 4
    assert values(await store.readings(ReadingQuery(resources=("Temp",)))) == [
        ("d1", "Temp", "3"),
        ("d2", "Temp", "2"),
        ("d1", "Temp", "1"),
    ]
    assert await store.count_readings(ReadingQuery(resources=("Temp",))) == 3
    assert values(await store.readings(ReadingQuery(device="d1", resources=("Temp",)))) == [
        ("d1", "Temp", "3"),
        ("d1", "Temp", "1"),
    ]
    # several resources of one device (the multiple-resources query), a repeated name counts once
    multi = ReadingQuery(device="d1", resources=("Hum", "State", "Hum"))
    assert values(await store.readings(multi)) == [("d1", "State", "on"), ("d1", "Hum", "40")]
    assert await store.count_readings(multi) == 2
    assert values(await store.readings(ReadingQuery(device="d1", resources=("Temp", "Hum"), offset=1, limit=1))) == [
        ("d1", "Hum", "40")
    ]
    # time ranges
    assert values(await store.readings(ReadingQuery(start=T0 + 20, end=T0 + 20))) == [("d2", "Temp", "2")]
    assert await store.count_readings(ReadingQuery(device="d1", start=T0 + 10, end=T0 + 29)) == 2
    ranged = ReadingQuery(device="d1", resources=("Temp",), start=T0 + 11)
    assert values(await store.readings(ranged)) == [("d1", "Temp", "3")]
    assert await store.count_readings(ReadingQuery(resources=("Temp",), end=T0 + 20)) == 2
    assert values(await store.readings(ReadingQuery(device="d1", resources=("Temp", "Hum"), end=T0 + 10))) == [
        ("d1", "Hum", "40"),
        ("d1", "Temp", "1"),
    ]
    # nothing known
    assert await store.readings(ReadingQuery(device="ghost")) == []
    assert await store.count_readings(ReadingQuery(resources=("ghost",))) == 0
    assert await store.readings(ReadingQuery(offset=100)) == []


async def test_aggregate_groups_and_statistics(store: EventStore) -> None:
    await store.add(
        [
            rec("d1", T0 + 1, {"Temp": ("Float64", "1.5"), "Count": ("Uint64", "18446744073709551615")}),
            rec("d1", T0 + 2, {"Temp": ("Float64", "-2.5"), "Count": ("Uint64", "1"), "State": ("String", "on")}),
            rec("d2", T0 + 3, {"Temp": ("Float64", "10")}),
            rec("d2", T0 + 4, {"Temp": ("Float64", None)}),  # a null reading: in the group, not in the figures
        ]
    )
    groups = {g.key: g for g in await store.aggregate(ReadingQuery())}
    assert list(groups) == sorted(groups)
    temp = groups[("d1", "Temp", "Thermostat", "Float64")]
    assert (temp.count, temp.total, temp.minimum, temp.maximum) == (2, -1.0, -2.5, 1.5)
    count = groups[("d1", "Count", "Thermostat", "Uint64")]
    assert (count.count, count.total, count.maximum) == (2, 2**64, 2**64 - 1)  # exact, no float rounding
    state = groups[("d1", "State", "Thermostat", "String")]
    assert (state.count, state.numeric) == (0, False)
    d2 = groups[("d2", "Temp", "Thermostat", "Float64")]
    assert (d2.count, d2.total) == (1, 10.0)

    by_device = await store.aggregate(ReadingQuery(device="d2"))
    assert [g.key for g in by_device] == [("d2", "Temp", "Thermostat", "Float64")]
    by_resource = await store.aggregate(ReadingQuery(resources=("Temp",)))
    assert [g.device for g in by_resource] == ["d1", "d2"]
    in_range = await store.aggregate(ReadingQuery(device="d1", resources=("Temp", "State"), start=T0 + 2, end=T0 + 2))
    assert [(g.resource, g.count, g.total) for g in in_range] == [("State", 0, 0), ("Temp", 1, -2.5)]
    assert await store.aggregate(ReadingQuery(device="ghost")) == []


async def test_delete_one_event_removes_it_everywhere(store: EventStore) -> None:
    a, b = rec("d1", T0, {"Temp": ("Float64", "1"), "Hum": ("Int16", "2")}), rec("d1", T0 + 1)
    await store.add([a, b])
    assert await store.delete_event(a.id) is True
    assert await store.delete_event(a.id) is False
    assert await store.get(a.id) is None
    assert ids(await store.events(EventQuery())) == [b.id]
    assert await store.count_readings(ReadingQuery()) == 1
    assert await store.count_readings(ReadingQuery(device="d1", resources=("Hum",))) == 0
    assert [g.resource for g in await store.aggregate(ReadingQuery())] == ["Temp"]
    # and it can be stored again afterwards
    assert await store.add([a]) == [True]


async def test_delete_events_by_query(store: EventStore) -> None:
    records = [rec("d1", T0 + i, source="s1" if i % 2 else "s2") for i in range(10)] + [rec("d2", T0 + 100)]
    await store.add(records)
    # by age: origin at or before T0 + 3
    assert await store.delete_events(EventQuery(end=T0 + 3)) == 4
    assert await store.count_events(EventQuery()) == 7
    # retention shape: keep the 2 newest events of d1/s1, remove the others
    assert await store.delete_events(EventQuery(device="d1", source="s1", offset=2)) == 1
    assert [d["origin"] for d in await store.events(EventQuery(device="d1", source="s1"))] == [T0 + 9, T0 + 7]
    # a limit
    assert await store.delete_events(EventQuery(device="d1", limit=1)) == 1
    assert [d["origin"] for d in await store.events(EventQuery(device="d1"))] == [T0 + 8, T0 + 7, T0 + 6, T0 + 4]
    # by device: every source of it
    assert await store.delete_events(EventQuery(device="d1")) == 4
    assert await store.count_events(EventQuery(device="d1")) == 0
    assert await store.count_readings(ReadingQuery(device="d1")) == 0
    assert ids(await store.events(EventQuery())) == [records[-1].id]
    assert await store.sources() == [("d2", "src")]
    assert await store.delete_events(EventQuery(device="nobody")) == 0


async def test_many_events_and_readings(store: EventStore) -> None:
    """More than one chunk of the Redis adapter's deletes and aggregate reads."""
    records = [rec(f"d{i % 3}", T0 + i, {f"R{j}": ("Int32", str(i + j)) for j in range(4)}) for i in range(1300)]
    for i in range(0, len(records), 400):
        assert await store.add(records[i : i + 400]) == [True] * len(records[i : i + 400])
    assert await store.count_readings(ReadingQuery()) == 5200
    groups = await store.aggregate(ReadingQuery(resources=("R0",)))
    assert sum(g.count for g in groups) == 1300
    assert sum(g.total for g in groups) == sum(range(1300))
    assert await store.delete_events(EventQuery(end=T0 + 1199)) == 1200
    assert await store.count_events(EventQuery()) == 100
    assert await store.count_readings(ReadingQuery(device="d1")) == 4 * len(
        [i for i in range(1200, 1300) if i % 3 == 1]
    )


async def test_sources_follow_the_events(store: EventStore) -> None:
    assert await store.sources() == []
    await store.add([rec("d1", T0, source="a"), rec("d1", T0 + 1, source="b"), rec("d2", T0 + 2, source="a")])
    assert await store.sources() == [("d1", "a"), ("d1", "b"), ("d2", "a")]
    await store.delete_events(EventQuery(device="d1", source="a"))
    assert await store.sources() == [("d1", "b"), ("d2", "a")]


async def test_redis_reloads_its_scripts(redis_url: str) -> None:
    """A Redis restarted (or SCRIPT FLUSHed) has forgotten the adapter's scripts: they are loaded again."""
    client = aioredis.from_url(redis_url)
    await client.flushdb()
    store = RedisEventStore(client)
    await store.r.script_flush()
    a = rec("d1", T0)
    assert await store.add([a]) == [True]
    await store.r.script_flush()
    assert await store.add([a]) == [False]
    await store.r.script_flush()
    assert await store.delete_event(a.id) is True
    assert await store.sources() == []
    await store.close()
