"""Devices and profiles kept in memory, so a command costs no core-metadata round trip.

Freshness comes from core-metadata's system events (`system_events.CacheUpdater` calls `device_changed`,
`device_deleted`, `profile_changed`, `profile_deleted`): every add, update (incl. adminState and
operatingState changes) and delete reaches the cache within a bus hop of being stored. Two safety nets:

- a TTL: an entry not refreshed for `ttl` seconds is fetched again (covers events lost while the bus
  connection was down; NATS core pub/sub is at-most-once);
- an epoch: a fetch that was in flight when any system event arrived returns its result to its callers but
  does not store it, so an older answer from core-metadata never overwrites a newer event.

Concurrent misses of the same name share one fetch. Unknown names are not cached (a 404 asks again).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, Protocol, TypeVar

from edgeplane_common.models import Device, DeviceProfile

T = TypeVar("T", Device, DeviceProfile)


class MetadataSource(Protocol):
    """Devices and profiles as core-metadata knows them (`clients.metadata.MetadataClient`, or a fake)."""

    async def device(self, name: str) -> Device:
        """NotFound if core-metadata has no such device."""
        ...

    async def profile(self, name: str) -> DeviceProfile:
        """NotFound if core-metadata has no such profile."""
        ...

    async def devices(self, offset: int, limit: int) -> tuple[list[Device], int]:
        """A page of all devices and the total (limit -1: as many as core-metadata allows)."""
        ...

    async def close(self) -> None: ...


class _Table(Generic[T]):
    def __init__(self) -> None:
        self.entries: dict[str, tuple[T, float]] = {}
        self.names_by_id: dict[str, str] = {}
        self.inflight: dict[str, asyncio.Future[T]] = {}

    def put(self, item: T, now: float) -> None:
        if item.id:
            old = self.names_by_id.get(item.id)
            if old is not None and old != item.name:  # renamed: the old name is gone
                self.entries.pop(old, None)
            self.names_by_id[item.id] = item.name
        self.entries[item.name] = (item, now)

    def pop(self, name: str) -> None:
        found = self.entries.pop(name, None)
        if found is not None and found[0].id:
            self.names_by_id.pop(found[0].id, None)

    def clear(self) -> None:
        self.entries.clear()
        self.names_by_id.clear()


class CachedMetadata:
    """A `MetadataSource` in front of another (core-metadata over REST), itself one."""

    def __init__(self, source: MetadataSource, *, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.source = source
        self.ttl = ttl
        self.clock = clock
        self._devices: _Table[Device] = _Table()
        self._profiles: _Table[DeviceProfile] = _Table()
        self._epoch = 0
        self.hits = 0
        self.misses = 0

    # -- MetadataSource --------------------------------------------------------------------------------
    async def device(self, name: str) -> Device:
        return await self._get(self._devices, name, self.source.device)

    async def profile(self, name: str) -> DeviceProfile:
        return await self._get(self._profiles, name, self.source.profile)

    async def devices(self, offset: int, limit: int) -> tuple[list[Device], int]:
        epoch = self._epoch
        items, total = await self.source.devices(offset, limit)
        if epoch == self._epoch:
            now = self.clock()
            for device in items:
                self._devices.put(device, now)
        return items, total

    async def close(self) -> None:
        await self.source.close()

    # -- kept fresh by system events -------------------------------------------------------------------
    def device_changed(self, device: Device) -> None:
        self._epoch += 1
        self._devices.put(device, self.clock())

    def device_deleted(self, name: str) -> None:
        self._epoch += 1
        self._devices.pop(name)

    def profile_changed(self, profile: DeviceProfile) -> None:
        self._epoch += 1
        self._profiles.put(profile, self.clock())

    def profile_deleted(self, name: str) -> None:
        self._epoch += 1
        self._profiles.pop(name)

    def clear(self) -> None:
        """Forget everything (e.g. an event that could not be understood)."""
        self._epoch += 1
        self._devices.clear()
        self._profiles.clear()

    # -- internals -------------------------------------------------------------------------------------
    async def _get(self, table: _Table[T], name: str, fetch: Callable[[str], Awaitable[T]]) -> T:
        hit = table.entries.get(name)
        if hit is not None and (not self.ttl or self.clock() - hit[1] < self.ttl):
            self.hits += 1
            return hit[0]
        self.misses += 1
        pending = table.inflight.get(name)
        if pending is None:
            # The epoch is taken now, not when the task first runs: an event in between must still win.
            pending = asyncio.ensure_future(self._load(table, name, fetch, self._epoch))
            table.inflight[name] = pending
            pending.add_done_callback(lambda f: _forget(table, name, f))
        # shield: a caller that gives up (client gone) must not cancel the fetch the others wait for.
        return await asyncio.shield(pending)

    async def _load(self, table: _Table[T], name: str, fetch: Callable[[str], Awaitable[T]], epoch: int) -> T:
        item = await fetch(name)
        if epoch == self._epoch:
            table.put(item, self.clock())
        return item


def _forget(table: _Table[T], name: str, fut: asyncio.Future[T]) -> None:
    if table.inflight.get(name) is fut:
        del table.inflight[name]
    if not fut.cancelled():
        fut.exception()  # retrieved here, so a failure nobody waited for is not logged as "never retrieved"
