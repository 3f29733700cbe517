"""Live values from the events stream: the latest value and a short series per device resource, and the
events/readings rates of the gateway.

The bus pushes events in as fast as they come; each page pulls what is new at its own pace (`since`), so
a device with 5 resources at 10 updates/s costs the browser a few coalesced chart updates per second, and
core-data is never polled for live values.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import NamedTuple


class Point(NamedTuple):
    seq: int
    """Position in the hub's sequence: a page asks for the points after the last one it drew."""
    at_ms: int
    value: float


@dataclass
class Latest:
    value: str
    value_type: str
    at_ms: int
    units: str = ""


class Reading(NamedTuple):
    resource: str
    value_type: str
    value: str | None
    """Text of the value as EdgeX sends it (None for binary/object readings)."""
    origin_ns: int
    units: str = ""


def as_number(value_type: str, text: str | None) -> float | None:
    """A chartable number for a reading (booleans as 0/1), or None."""
    if text is None:
        return None
    kind = value_type.lower()
    if kind == "bool":
        return 1.0 if text.lower() == "true" else 0.0 if text.lower() == "false" else None
    if kind.startswith(("int", "uint", "float")) and not kind.endswith("array"):
        try:
            number = float(text)
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


class RateMeter:
    """Counts per second over the last `window_s` seconds (one bucket per second)."""

    def __init__(self, window_s: int = 300) -> None:
        self.window_s = window_s
        self._buckets: deque[list[int]] = deque()  # [second, count]

    def add(self, count: int, now: float) -> None:
        second = int(now)
        if self._buckets and self._buckets[-1][0] == second:
            self._buckets[-1][1] += count
        else:
            self._buckets.append([second, count])
        self._trim(second)

    def _trim(self, second: int) -> None:
        while self._buckets and self._buckets[0][0] <= second - self.window_s:
            self._buckets.popleft()

    def series(self, now: float) -> list[tuple[int, int]]:
        """(second, count) for every whole second of the window up to the last complete one (zeros filled)."""
        last = int(now) - 1
        self._trim(last + 1)
        counts = {s: c for s, c in self._buckets}
        first = last - self.window_s + 1
        return [(s, counts.get(s, 0)) for s in range(first, last + 1)]

    def rate(self, now: float, over_s: int = 10) -> float:
        """Average per second over the last `over_s` complete seconds."""
        last = int(now) - 1
        return sum(c for s, c in self._buckets if last - over_s < s <= last) / over_s


@dataclass
class LiveHub:
    """Per device resource: the latest value and the last `keep` numeric points; gateway-wide rates."""

    keep: int = 600
    clock: Callable[[], float] = time.time
    events: RateMeter = field(default_factory=RateMeter)
    readings: RateMeter = field(default_factory=RateMeter)
    last_event_ms: dict[str, int] = field(default_factory=dict)
    _latest: dict[str, dict[str, Latest]] = field(default_factory=dict)
    _series: dict[tuple[str, str], deque[Point]] = field(default_factory=dict)
    _seq: int = 0

    def add_event(self, device: str, readings: Iterable[Reading]) -> None:
        now = self.clock()
        count = 0
        latest = self._latest.setdefault(device, {})
        newest = 0
        for r in readings:
            count += 1
            at_ms = r.origin_ns // 1_000_000 if r.origin_ns > 10**15 else int(now * 1000)
            newest = max(newest, at_ms)
            latest[r.resource] = Latest(r.value if r.value is not None else "(binary)", r.value_type, at_ms, r.units)
            number = as_number(r.value_type, r.value)
            if number is None:
                continue
            self._seq += 1
            series = self._series.get((device, r.resource))
            if series is None:
                series = self._series[(device, r.resource)] = deque(maxlen=self.keep)
            series.append(Point(self._seq, at_ms, number))
        self.events.add(1, now)
        self.readings.add(count, now)
        if newest:
            self.last_event_ms[device] = max(newest, self.last_event_ms.get(device, 0))

    def latest(self, device: str) -> dict[str, Latest]:
        return dict(self._latest.get(device, {}))

    def since(self, device: str, resource: str, seq: int) -> list[Point]:
        """The points of one resource after `seq` (all kept points for 0)."""
        series = self._series.get((device, resource))
        if not series or series[-1].seq <= seq:
            return []
        if seq < series[0].seq:
            return list(series)
        return [p for p in series if p.seq > seq]

    def resources(self, device: str) -> list[str]:
        return sorted(r for d, r in self._series if d == device)


@dataclass
class Firing:
    rule_id: str
    at_ms: int
    data: str


@dataclass
class Firings:
    """The last alerts the rules published (their `publish` action), newest last."""

    keep: int = 200
    items: deque[Firing] = field(default_factory=deque)

    def add(self, firing: Firing) -> None:
        self.items.append(firing)
        while len(self.items) > self.keep:
            self.items.popleft()

    def of(self, rule_id: str, limit: int = 5) -> list[Firing]:
        return [f for f in reversed(self.items) if f.rule_id == rule_id][:limit]
