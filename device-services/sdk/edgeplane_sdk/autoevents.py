"""AutoEvents: poll a source on a fixed schedule and publish its event.

Ticks are deadline-based (start + k·interval), so slow reads never make the schedule drift; a tick that
is missed entirely is skipped rather than bunched up. `onChange` publishes only when a reading changed
(by more than `onChangeThreshold` for numbers)."""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable

from edgeplane_common.durations import parse_duration
from edgeplane_common.errors import EdgeError
from edgeplane_common.models import AutoEvent, Device, Event

log = logging.getLogger(__name__)

Reader = Callable[[str, str], Awaitable[Event]]
Publisher = Callable[[Event], Awaitable[None]]


def changed(previous: dict[str, str | None], event: Event, threshold: float | None) -> bool:
    """True if any reading differs from the last published one (numbers: by more than threshold)."""
    if len(previous) != len(event.readings):
        return True
    for r in event.readings:
        old = previous.get(r.resource_name, "<missing>")
        if old == r.value:
            continue
        if threshold and r.value_type.is_numeric and old is not None and r.value is not None:
            try:
                if abs(float(r.value) - float(old)) <= threshold:
                    continue
            except ValueError:
                pass
        return True
    return False


class AutoEventScheduler:
    def __init__(self, read: Reader, publish: Publisher) -> None:
        self.read = read
        self.publish = publish
        self.tasks: dict[str, list[asyncio.Task[None]]] = {}

    def start_device(self, device: Device) -> None:
        self.stop_device(device.name)
        if device.admin_state.value == "LOCKED":
            return
        self.tasks[device.name] = [
            asyncio.create_task(self._run(device.name, ae), name=f"autoevent:{device.name}:{ae.source_name}")
            for ae in device.auto_events
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
        while True:
            try:
                event = await self.read(device, ae.source_name)
                if not ae.on_change or last is None or changed(last, event, ae.on_change_threshold):
                    await self.publish(event)
                    last = {r.resource_name: r.value for r in event.readings}
            except EdgeError:
                pass  # counted and logged once by the health tracker
            except Exception:
                log.exception("autoevent %s/%s failed", device, ae.source_name)
            # Next deadline on the fixed grid; skip ticks we are already past.
            tick = max(tick + 1, math.floor((loop.time() - start) / interval) + 1)
            await asyncio.sleep(max(0.0, start + tick * interval - loop.time()))
