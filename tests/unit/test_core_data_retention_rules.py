"""Retention (EdgeX 4.0 semantics) over the in-memory store: it removes what it should and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from core_data.application.ports import EventQuery
from core_data.application.retention import RetentionPolicy, RetentionService, policies
from core_data.infrastructure.memory_store import InMemoryEventStore
from edgeplane_common.edgex.events import validate_event
from edgeplane_common.errors import ServiceUnavailable
from edgeplane_common.models import Device
from tests.support.core_data import event

S = 10**9
NOW = 1_800_000_000 * S
DEFAULTS = RetentionPolicy(max_cap=-1, min_cap=3, duration_ns=60 * S)


class FakeMetadata:
    def __init__(self, devices: list[Device]) -> None:
        self.list = devices
        self.down = False

    async def all_devices(self) -> list[Device]:
        if self.down:
            raise ServiceUnavailable("core-metadata is down")
        return self.list

    async def close(self) -> None:
        return None


def device(name: str, auto_events: list[dict[str, Any]]) -> Device:
    return Device.model_validate(
        {
            "name": name,
            "serviceName": "svc",
            "profileName": "p",
            "adminState": "UNLOCKED",
            "operatingState": "UP",
            "protocols": {},
            "autoEvents": [{"interval": "1s", **a} for a in auto_events],
        }
    )


async def fill(store: InMemoryEventStore, dev: str, source: str, ages_s: list[float]) -> dict[float, str]:
    """One event per age (seconds before NOW); {age: event id}."""
    out = {}
    for age in ages_s:
        record = validate_event(event(dev, source=source, origin=NOW - int(age * S)))
        await store.add([record])
        out[age] = record.id
    return out


async def remaining_ages(store: InMemoryEventStore, dev: str, source: str) -> list[float]:
    docs = await store.events(EventQuery(device=dev, source=source))
    return [(NOW - d["origin"]) / S for d in docs]


def test_autoevent_fields_override_the_defaults() -> None:
    devs = [
        device(
            "plc",
            [
                {"sourceName": "A", "retention": {"maxCap": 5, "minCap": 2}},
                {"sourceName": "B", "retention": {"maxCap": 0, "minCap": 0, "duration": "10s"}},
                {"sourceName": "C"},
                {"sourceName": "D", "retention": {"duration": "1d"}},
            ],
        )
    ]
    got = {(d, s): p for d, s, p in policies(devs, DEFAULTS)}
    assert got[("plc", "A")] == RetentionPolicy(5, 2, 60 * S)
    assert got[("plc", "B")] == RetentionPolicy(-1, 3, 10 * S)
    assert got[("plc", "C")] == DEFAULTS
    assert got[("plc", "D")] == RetentionPolicy(-1, 3, 86_400 * S)


async def test_retention_removes_what_it_should_and_nothing_else() -> None:
    store = InMemoryEventStore()
    metadata = FakeMetadata(
        [
            device(
                "plc",
                [
                    # count-based (duration 0): over maxCap, keep the 2 newest
                    {"sourceName": "A", "retention": {"maxCap": 5, "minCap": 2, "duration": "0"}},
                    # time-based: older than 10 s go, but the newest of those stays (minCap 1)
                    {"sourceName": "B", "retention": {"maxCap": -1, "minCap": 1, "duration": "10s"}},
                    # under its high watermark: untouched
                    {"sourceName": "C", "retention": {"maxCap": 100, "minCap": 1, "duration": "1s"}},
                    # no retention of its own: the defaults (keep 60 s, and 3 older ones)
                    {"sourceName": "D"},
                ],
            )
        ]
    )
    await fill(store, "plc", "A", [1, 2, 3, 4, 5, 6])
    await fill(store, "plc", "B", [1, 5, 20, 30, 40])
    await fill(store, "plc", "C", [1, 2, 3, 50, 60, 70])
    await fill(store, "plc", "D", [10, 70, 80, 90, 100, 110])
    # a source no autoEvent covers (and a device core-metadata no longer knows): the defaults
    await fill(store, "gone", "X", [10, 70, 80, 90, 100, 110])
    # a source with fewer events than minCap keeps them all, however old
    await fill(store, "gone", "Y", [1000, 2000])

    service = RetentionService(store, metadata, DEFAULTS, clock=lambda: NOW)
    assert await service.run_once() == 4 + 2 + 0 + 2 + 2 + 0

    assert await remaining_ages(store, "plc", "A") == [1, 2]
    assert await remaining_ages(store, "plc", "B") == [1, 5, 20]
    assert await remaining_ages(store, "plc", "C") == [1, 2, 3, 50, 60, 70]
    assert await remaining_ages(store, "plc", "D") == [10, 70, 80, 90]
    assert await remaining_ages(store, "gone", "X") == [10, 70, 80, 90]
    assert await remaining_ages(store, "gone", "Y") == [1000, 2000]
    # a second pass finds nothing more to do
    assert await service.run_once() == 0


async def test_high_watermark_is_reached_at_max_cap() -> None:
    store = InMemoryEventStore()
    policy = RetentionPolicy(max_cap=4, min_cap=1, duration_ns=0)
    service = RetentionService(store, FakeMetadata([]), DEFAULTS, clock=lambda: NOW)
    await fill(store, "d", "s", [1, 2, 3])
    assert await service.enforce("d", "s", policy) == 0
    await fill(store, "d", "s", [4])
    assert await service.enforce("d", "s", policy) == 3
    assert await remaining_ages(store, "d", "s") == [1]


async def test_min_cap_zero_removes_everything_in_scope() -> None:
    store = InMemoryEventStore()
    service = RetentionService(store, FakeMetadata([]), DEFAULTS, clock=lambda: NOW)
    await fill(store, "d", "s", [1, 20, 30])
    assert await service.enforce("d", "s", RetentionPolicy(-1, 0, 10 * S)) == 2
    assert await remaining_ages(store, "d", "s") == [1]
    assert await service.enforce("d", "s", RetentionPolicy(-1, 0, 0)) == 1
    assert await store.sources() == []


async def test_events_sharing_an_origin_never_go_below_min_cap() -> None:
    store = InMemoryEventStore()
    service = RetentionService(store, FakeMetadata([]), DEFAULTS, clock=lambda: NOW)
    await fill(store, "d", "s", [5, 5, 5, 9])
    assert await service.enforce("d", "s", RetentionPolicy(-1, 2, 0)) == 2
    assert await store.count_events(EventQuery(device="d", source="s")) == 2


async def test_without_core_metadata_nothing_is_purged(caplog: pytest.LogCaptureFixture) -> None:
    store = InMemoryEventStore()
    metadata = FakeMetadata([])
    metadata.down = True
    await fill(store, "d", "s", [1000, 2000, 3000, 4000])
    service = RetentionService(store, metadata, RetentionPolicy(-1, 0, S), clock=lambda: NOW)
    assert await service.run_once() is None
    assert await service.run_once() is None
    assert await store.count_events(EventQuery()) == 4
    assert [r.message for r in caplog.records].count(
        "retention skipped: cannot list devices from core-metadata (core-metadata is down)"
    ) == 1, "the outage is logged once"
    metadata.down = False
    assert await service.run_once() == 4
