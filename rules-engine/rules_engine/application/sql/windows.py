"""eKuiper's windows over a stream of rows, driven by the caller's clock, so tests control time exactly.

Time windows (tumbling, hopping, sliding) keep their rows sorted by timestamp: an event that arrives out of
order lands where it belongs as long as its window has not been emitted; one whose every window has been
emitted already is late, dropped and counted. The caller decides what time is: processing time (`add(now)`,
then `advance(now)`, also from a timer) or event time (`add(origin)`, then `advance(watermark)`, the
watermark trailing the newest origin by the rule's late tolerance).

Windows are aligned to multiples of their hop since the epoch, as eKuiper aligns them; an empty window emits
nothing.
"""

from __future__ import annotations

import bisect
import itertools
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

Row = dict[str, Any]

UNITS_MS = {"dd": 86_400_000, "hh": 3_600_000, "mi": 60_000, "ss": 1_000, "ms": 1}
"""eKuiper's window time units."""


class WindowKind(StrEnum):
    TUMBLING = "TumblingWindow"
    HOPPING = "HoppingWindow"
    SLIDING = "SlidingWindow"
    COUNT = "CountWindow"


@dataclass(frozen=True, slots=True)
class WindowSpec:
    kind: WindowKind
    size: int
    """Milliseconds (time windows) or rows (count window)."""
    hop: int
    """Milliseconds between emissions (tumbling: size), rows between emissions (count), delay (sliding)."""

    @property
    def timed(self) -> bool:
        return self.kind is not WindowKind.COUNT


@dataclass(frozen=True, slots=True)
class Emission:
    start: int
    end: int
    """[start, end) in the window's time (ms), or row sequence numbers for count windows."""
    rows: list[Row]


@dataclass
class Window:
    spec: WindowSpec
    late: int = 0
    """Rows dropped because every window they belonged to had been emitted already."""
    _rows: list[tuple[int, int, Row]] = field(default_factory=list)
    _seq: itertools.count[int] = field(default_factory=itertools.count)
    _emitted_until: int | None = None
    _triggers: list[int] = field(default_factory=list)
    _since: int = 0

    def __len__(self) -> int:
        return len(self._rows)

    # -- input ---------------------------------------------------------------------------------------
    def add(self, ts: int, row: Row) -> list[Emission]:
        """Take one row at time `ts` (ms). A count window may emit at once; time windows emit on `advance`."""
        spec = self.spec
        if spec.kind is WindowKind.COUNT:
            return self._add_counted(row)
        if self._emitted_until is None:
            self._emitted_until = self._floor(ts)
        if spec.kind is WindowKind.SLIDING:
            trigger = ts + spec.hop
            if trigger < self._emitted_until:  # its own window was due before an emitted one
                self.late += 1
                return []
            bisect.insort(self._triggers, trigger)
        elif self._last_end(ts) <= self._emitted_until:
            self.late += 1
            return []
        bisect.insort(self._rows, (ts, next(self._seq), row), key=lambda r: (r[0], r[1]))
        return []

    def advance(self, now: int) -> list[Emission]:
        """Emit every window that has closed by `now` (ms), oldest first."""
        spec = self.spec
        if spec.kind is WindowKind.COUNT:
            return []
        if self._emitted_until is None:
            self._emitted_until = self._floor(now)
            return []
        if spec.kind is WindowKind.SLIDING:
            return self._advance_sliding(now)
        return self._advance_aligned(now)

    def next_deadline(self) -> int | None:
        """When `advance` next has something to do (ms), if known: for timers."""
        spec = self.spec
        if spec.kind is WindowKind.COUNT or self._emitted_until is None:
            return None
        if spec.kind is WindowKind.SLIDING:
            return self._triggers[0] if self._triggers else None
        if not self._rows:
            return None
        return self._next_boundary(max(self._emitted_until, self._rows[0][0]))

    # -- count window --------------------------------------------------------------------------------
    def _add_counted(self, row: Row) -> list[Emission]:
        spec = self.spec
        seq = next(self._seq)
        self._rows.append((seq, seq, row))
        self._since += 1
        if len(self._rows) >= spec.size and self._since >= spec.hop:
            window = self._rows[-spec.size :]
            self._since = 0
            # Keep what the next emission can still contain.
            self._rows = window[spec.hop :] if spec.hop < spec.size else []
            return [Emission(window[0][0], window[-1][0] + 1, [r for _, _, r in window])]
        return []

    # -- tumbling and hopping ------------------------------------------------------------------------
    def _floor(self, t: int) -> int:
        """The latest window end at or before `t`."""
        spec = self.spec
        hop = spec.hop if spec.kind is not WindowKind.SLIDING else 1
        size = spec.size if spec.kind is not WindowKind.SLIDING else 0
        return ((t - size) // hop) * hop + size

    def _next_boundary(self, t: int) -> int:
        """The first window end after `t`."""
        return self._floor(t) + self.spec.hop

    def _last_end(self, ts: int) -> int:
        """The end of the last window that contains `ts`."""
        hop = self.spec.hop
        return (ts // hop) * hop + self.spec.size

    def _advance_aligned(self, now: int) -> list[Emission]:
        assert self._emitted_until is not None
        spec = self.spec
        out: list[Emission] = []
        while True:
            if not self._rows:
                self._emitted_until = max(self._emitted_until, self._floor(now))
                return out
            # The next window end, skipping the empty windows before the oldest row.
            end = max(self._next_boundary(self._emitted_until), self._next_boundary(self._rows[0][0]))
            if end > now:
                return out
            start = end - spec.size
            lo = bisect.bisect_left(self._rows, start, key=lambda r: r[0])
            hi = bisect.bisect_left(self._rows, end, key=lambda r: r[0])
            if hi > lo:
                out.append(Emission(start, end, [r for _, _, r in self._rows[lo:hi]]))
            self._emitted_until = end
            # Rows no later window can contain.
            keep_from = bisect.bisect_left(self._rows, end + spec.hop - spec.size, key=lambda r: r[0])
            del self._rows[:keep_from]

    # -- sliding -------------------------------------------------------------------------------------
    def _advance_sliding(self, now: int) -> list[Emission]:
        assert self._emitted_until is not None
        spec = self.spec
        out: list[Emission] = []
        while self._triggers and self._triggers[0] <= now:
            trigger = self._triggers.pop(0)
            end = trigger + 1  # (trigger - size - delay, trigger]: the triggering row included
            start = trigger - spec.hop - spec.size + 1
            lo = bisect.bisect_left(self._rows, start, key=lambda r: r[0])
            hi = bisect.bisect_left(self._rows, end, key=lambda r: r[0])
            if hi > lo:
                out.append(Emission(start, end, [r for _, _, r in self._rows[lo:hi]]))
            self._emitted_until = max(self._emitted_until, trigger)
        # Rows that no pending or future trigger's window reaches.
        floor = self._emitted_until
        oldest = min(self._triggers[0] if self._triggers else floor, floor) - spec.hop - spec.size + 1
        keep_from = bisect.bisect_left(self._rows, oldest, key=lambda r: r[0])
        del self._rows[:keep_from]
        return out
