"""AutoEvents: poll a source on a fixed schedule and publish its event.

Ticks are deadline-based (start + k·interval), so slow reads never make the schedule drift; a tick that
is missed entirely is skipped rather than bunched up (a read overrunning its interval may overlap with one
more, see AutoEventScheduler). `onChange` publishes only when a reading changed (by more than
`onChangeThreshold` for numbers)."""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from edgeplane_common.durations import parse_duration
from edgeplane_common.errors import EdgeError
from edgeplane_common.models import AutoEvent, Device, Event, ValueType

log = logging.getLogger(__name__)

AnyEvent = Event | dict[str, Any]
"""An `Event`, or an event in its EdgeX JSON shape (what the runtime reads and publishes)."""
Reader = Callable[[str, str], Coroutine[Any, Any, AnyEvent]]
Publisher = Callable[[AnyEvent], Awaitable[None]]

_NUMERIC = frozenset(vt.value for vt in ValueType if vt.is_numeric)


def _readings(event: AnyEvent) -> list[tuple[str, str | None, bool]]:
    """(resource name, value text, numeric?) of each reading."""
    if isinstance(event, dict):
        return [(r["resourceName"], r.get("value"), r["valueType"] in _NUMERIC) for r in event["readings"]]
    return [(r.resource_name, r.value, r.value_type.is_numeric) for r in event.readings]


def changed(previous: dict[str, str | None], event: AnyEvent, threshold: float | None) -> bool:
    """True if any reading differs from the last published one (numbers: by more than threshold)."""
    readings = _readings(event)
    if len(previous) != len(readings):
        return True
    for name, value, numeric in readings:
        old = previous.get(name, "<missing>")
        if old == value:
            continue
        if threshold and numeric and old is not None and value is not None:
            try:
                if abs(float(value) - float(old)) <= threshold:
                    continue
            except ValueError:
                pass
        return True
    return False


class AutoEventScheduler:
    """Runs each autoEvent of each device on its own deadline grid.

    A read that overruns its interval (a device polled as fast as it can) may overlap with the next one: up to
    `depth` reads of one autoEvent are in flight, so the next read's I/O proceeds while the previous event is
    built and published (a Modbus link's lock still serialises the requests themselves). Events are handled
    in tick order. With reads shorter than the interval nothing overlaps; beyond `depth`, ticks are skipped."""

    def __init__(
        self,
        read: Reader,
        publish: Publisher,
        *,
        depth: int = 2,
        claimed: Callable[[Device, AutoEvent], bool] | None = None,
    ) -> None:
        self.read = read
        self.publish = publish
        self.claimed = claimed  # autoEvents the driver serves itself (subscriptions): not polled
        self.depth = max(1, depth)
        self.tasks: dict[str, list[asyncio.Task[None]]] = {}

    def start_device(self, device: Device) -> None:
        self.stop_device(device.name)
        if device.admin_state.value == "LOCKED":
            return
        self.tasks[device.name] = [
            asyncio.create_task(self._run(device.name, ae), name=f"autoevent:{device.name}:{ae.source_name}")
            for ae in device.auto_events
            if self.claimed is None or not self.claimed(device, ae)
        ]

    def stop_device(self, name: str) -> None:
        for task in self.tasks.pop(name, []):
            task.cancel()

    async def stop(self) -> None:
        tasks = [t for ts in self.tasks.values() for t in ts]
        self.tasks.clear()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, device: str, ae: AutoEvent) -> None:
        interval = parse_duration(ae.interval)
        loop = asyncio.get_running_loop()
        start = loop.time()
        tick = 0
        last: dict[str, str | None] | None = None
        reads: deque[asyncio.Task[AnyEvent]] = deque()
        try:
            while True:
                if reads and reads[0].done():
                    last = await self._handle(device, ae, reads.popleft(), last)
                    continue
                now = loop.time()
                due = start + tick * interval
                if len(reads) < self.depth and now >= due:
                    reads.append(asyncio.create_task(self.read(device, ae.source_name)))
                    # Next deadline on the fixed grid; skip ticks we are already past.
                    tick = max(tick + 1, math.floor((now - start) / interval) + 1)
                    continue
                wait = None if len(reads) >= self.depth else due - now
                if reads:
                    await asyncio.wait((reads[0],), timeout=wait)
                else:
                    await asyncio.sleep(wait or 0.0)
        finally:
            for task in reads:
                task.cancel()
            await asyncio.gather(*reads, return_exceptions=True)

    async def _handle(
        self, device: str, ae: AutoEvent, read: asyncio.Task[AnyEvent], last: dict[str, str | None] | None
    ) -> dict[str, str | None] | None:
        """Publish a finished read's event (onChange: only if it changed); the readings last published."""
        try:
            event = read.result()
            if not ae.on_change:
                await self.publish(event)
            elif last is None or changed(last, event, ae.on_change_threshold):
                await self.publish(event)
                last = {name: value for name, value, _ in _readings(event)}
        except EdgeError:
            pass  # counted and logged once by the health tracker
        except Exception:
            log.exception("autoevent %s/%s failed", device, ae.source_name)
        return last
