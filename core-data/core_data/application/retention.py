"""EdgeX 4.0 retention: per device source (autoEvent `retention`), a global default for the rest.

For one device source with policy (maxCap, minCap, duration), as edgex-go's eventpurge.go:
  - maxCap > 0 and fewer than maxCap events stored: nothing happens (the high watermark is not reached);
  - duration > 0: events older than `duration` are removed, except the `minCap` newest of those;
  - duration 0: every event is removed except the `minCap` newest.
Zero or empty fields of an autoEvent's retention take the configured defaults. Sources with events but no
autoEvent (or no longer any device) get the defaults. edgex-go removes "origin at or before the
(minCap+1)-th newest"; we remove by rank, so events sharing an origin can never take the count below minCap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from core_data.application.ports import EventQuery, EventStore, MetadataSource
from edgeplane_common.durations import parse_retention_duration
from edgeplane_common.errors import EdgeError
from edgeplane_common.models import Device, Retention

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RetentionPolicy:
    max_cap: int
    min_cap: int
    duration_ns: int

    def with_defaults(self, retention: Retention | None) -> RetentionPolicy:
        """This policy (the defaults) overridden by an autoEvent's non-zero, non-empty fields."""
        if retention is None:
            return self
        return RetentionPolicy(
            max_cap=retention.max_cap or self.max_cap,
            min_cap=retention.min_cap or self.min_cap,
            duration_ns=parse_retention_duration(retention.duration) if retention.duration else self.duration_ns,
        )

    def purge_query(self, device: str, source: str, now: int) -> EventQuery:
        """The events of one source this policy removes (once the high watermark is reached)."""
        end = now - self.duration_ns if self.duration_ns > 0 else None
        return EventQuery(device=device, source=source, end=end, offset=max(self.min_cap, 0))


def policies(devices: list[Device], defaults: RetentionPolicy) -> list[tuple[str, str, RetentionPolicy]]:
    """(device, source, policy) for every autoEvent, in the devices' order."""
    out = []
    for device in devices:
        for auto_event in device.auto_events or ():
            try:
                policy = defaults.with_defaults(auto_event.retention)
            except ValueError as err:
                log.warning(
                    "device %s source %s: invalid retention, defaults used: %s",
                    device.name,
                    auto_event.source_name,
                    err,
                )
                policy = defaults
            out.append((device.name, auto_event.source_name, policy))
    return out


class RetentionService:
    def __init__(
        self,
        store: EventStore,
        metadata: MetadataSource,
        defaults: RetentionPolicy,
        *,
        clock: Callable[[], int] = time.time_ns,
    ) -> None:
        self.store = store
        self.metadata = metadata
        self.defaults = defaults
        self.clock = clock
        self._metadata_down = False

    async def enforce(self, device: str, source: str, policy: RetentionPolicy) -> int:
        """Apply one policy to one device source; how many events were removed."""
        if policy.max_cap > 0:
            stored = await self.store.count_events(EventQuery(device=device, source=source))
            if stored < policy.max_cap:
                return 0
        return await self.store.delete_events(policy.purge_query(device, source, self.clock()))

    async def run_once(self) -> int | None:
        """One retention pass; events removed, or None when core-metadata could not be asked (skipped:
        purging with defaults alone could remove what a device's own policy keeps)."""
        try:
            devices = await self.metadata.all_devices()
        except EdgeError as err:
            if not self._metadata_down:
                log.warning("retention skipped: cannot list devices from core-metadata (%s)", err)
                self._metadata_down = True
            return None
        if self._metadata_down:
            log.info("retention: core-metadata answers again")
            self._metadata_down = False
        removed = 0
        covered: set[tuple[str, str]] = set()
        for device, source, policy in policies(devices, self.defaults):
            covered.add((device, source))
            removed += await self.enforce(device, source, policy)
        for device, source in await self.store.sources():
            if (device, source) not in covered:
                removed += await self.enforce(device, source, self.defaults)
        if removed:
            log.info("retention removed %d event(s)", removed)
        return removed

    async def run_forever(self, interval: float) -> None:
        """A pass every `interval` seconds (timed from the end of the previous one, as edgex-go)."""
        failing = False
        while True:
            await asyncio.sleep(interval)
            try:
                await self.run_once()
            except EdgeError as err:
                if not failing:
                    log.warning("retention pass failed: %s", err)
                    failing = True
                continue
            if failing:
                log.info("retention passes succeed again")
                failing = False
