"""core-command's device/profile cache: hits, TTL, system-event updates, renames, the epoch guard against an
older fetch overwriting a newer event, and one fetch for concurrent misses."""

from __future__ import annotations

import asyncio

import pytest

from edgeplane_common.clients.cache import CachedMetadata
from edgeplane_common.errors import NotFound
from edgeplane_common.models import AdminState, Device, DeviceProfile


def dev(name: str, *, id_: str | None = None, locked: bool = False) -> Device:
    return Device(
        id=id_ or f"id-{name}",
        name=name,
        service_name="svc",
        profile_name="P",
        admin_state=AdminState.LOCKED if locked else AdminState.UNLOCKED,
    )


class Source:
    """A MetadataSource that counts calls and can hold a fetch until released."""

    def __init__(self) -> None:
        self.devices_by_name: dict[str, Device] = {"d1": dev("d1")}
        self.profiles_by_name: dict[str, DeviceProfile] = {"P": DeviceProfile(name="P")}
        self.calls: list[str] = []
        self.gate: asyncio.Event | None = None

    async def device(self, name: str) -> Device:
        self.calls.append(f"device:{name}")
        found = self.devices_by_name.get(name)  # read before waiting: the answer is "as of the request"
        if self.gate is not None:
            await self.gate.wait()
        if found is None:
            raise NotFound(f"device {name!r} does not exist")
        return found

    async def profile(self, name: str) -> DeviceProfile:
        self.calls.append(f"profile:{name}")
        if name not in self.profiles_by_name:
            raise NotFound(f"device profile {name!r} does not exist")
        return self.profiles_by_name[name]

    async def devices(self, offset: int, limit: int) -> tuple[list[Device], int]:
        self.calls.append("devices")
        items = sorted(self.devices_by_name.values(), key=lambda d: d.name)
        return items[offset : offset + limit if limit >= 0 else None], len(items)

    async def close(self) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def source() -> Source:
    return Source()


@pytest.fixture
def clock() -> Clock:
    return Clock()


async def test_second_lookup_is_a_hit_until_the_ttl_runs_out(source: Source, clock: Clock) -> None:
    cache = CachedMetadata(source, ttl=60, clock=clock)
    assert (await cache.device("d1")).name == "d1"
    await cache.device("d1")
    await cache.profile("P")
    await cache.profile("P")
    assert source.calls == ["device:d1", "profile:P"]
    assert (cache.hits, cache.misses) == (2, 2)
    clock.now += 59.9
    await cache.device("d1")
    assert len(source.calls) == 2
    clock.now += 0.2
    await cache.device("d1")
    assert source.calls[-1] == "device:d1"
    assert len(source.calls) == 3


async def test_ttl_zero_never_expires(source: Source, clock: Clock) -> None:
    cache = CachedMetadata(source, ttl=0, clock=clock)
    await cache.device("d1")
    clock.now += 1e9
    await cache.device("d1")
    assert source.calls == ["device:d1"]


async def test_unknown_names_are_not_cached(source: Source) -> None:
    cache = CachedMetadata(source, ttl=60)
    for _ in range(2):
        with pytest.raises(NotFound):
            await cache.device("ghost")
    assert source.calls == ["device:ghost", "device:ghost"]
    source.devices_by_name["ghost"] = dev("ghost")
    assert (await cache.device("ghost")).name == "ghost"


async def test_system_events_update_and_delete_entries(source: Source, clock: Clock) -> None:
    cache = CachedMetadata(source, ttl=60, clock=clock)
    await cache.device("d1")
    cache.device_changed(dev("d1", locked=True))
    assert (await cache.device("d1")).admin_state is AdminState.LOCKED
    # An event also refreshes the entry's age.
    clock.now += 50
    cache.device_changed(dev("d1"))
    clock.now += 50
    assert (await cache.device("d1")).admin_state is AdminState.UNLOCKED
    assert source.calls == ["device:d1"]
    # Devices we never looked up are taken from their add event.
    cache.device_changed(dev("d2"))
    await cache.device("d2")
    assert source.calls == ["device:d1"]
    cache.device_deleted("d1")
    del source.devices_by_name["d1"]
    with pytest.raises(NotFound):
        await cache.device("d1")
    cache.profile_changed(DeviceProfile(name="P", description="v2"))
    assert (await cache.profile("P")).description == "v2"
    cache.profile_deleted("P")
    assert (await cache.profile("P")).description is None  # fetched again
    assert source.calls[-1] == "profile:P"


async def test_a_rename_forgets_the_old_name(source: Source) -> None:
    cache = CachedMetadata(source, ttl=60)
    await cache.device("d1")
    cache.device_changed(dev("d1-renamed", id_="id-d1"))
    del source.devices_by_name["d1"]
    with pytest.raises(NotFound):
        await cache.device("d1")
    assert (await cache.device("d1-renamed")).id == "id-d1"


async def test_a_fetch_overtaken_by_an_event_is_not_stored(source: Source) -> None:
    cache = CachedMetadata(source, ttl=60)
    source.gate = asyncio.Event()
    fetch = asyncio.create_task(cache.device("d1"))  # core-metadata's answer: unlocked
    await asyncio.sleep(0)
    cache.device_changed(dev("d1", locked=True))  # the lock event arrives while the answer travels
    source.gate.set()
    assert (await fetch).admin_state is AdminState.UNLOCKED  # that caller gets what it asked for...
    assert (await cache.device("d1")).admin_state is AdminState.LOCKED  # ...but the event wins
    assert source.calls == ["device:d1"]


async def test_concurrent_misses_share_one_fetch_and_survive_a_cancelled_caller(source: Source) -> None:
    cache = CachedMetadata(source, ttl=60)
    source.gate = asyncio.Event()
    first = asyncio.create_task(cache.device("d1"))
    others = [asyncio.create_task(cache.device("d1")) for _ in range(5)]
    await asyncio.sleep(0)
    first.cancel()
    source.gate.set()
    assert [d.name for d in await asyncio.gather(*others)] == ["d1"] * 5
    assert source.calls == ["device:d1"]
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_listing_fills_the_cache_and_clear_forgets_everything(source: Source) -> None:
    source.devices_by_name["d2"] = dev("d2")
    cache = CachedMetadata(source, ttl=60)
    items, total = await cache.devices(0, -1)
    assert ([d.name for d in items], total) == (["d1", "d2"], 2)
    await cache.device("d2")
    assert source.calls == ["devices"]
    cache.clear()
    await cache.device("d2")
    assert source.calls == ["devices", "device:d2"]
