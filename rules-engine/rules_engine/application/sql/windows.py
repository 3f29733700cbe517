"""eKuiper's windows over a stream of rows, driven by the caller's clock, so tests control time exactly.

Time windows (tumbling, hopping, sliding) keep their rows sorted by timestamp: an event that arrives out of
order lands where it belongs as long as its window has not been emitted; one whose every window has been
emitted already is late, dropped and counted. The caller decides what time is: processing time (`add(now)`,
then `advance(now)`, also from a timer) or event time (`add(origin)`, then `advance(watermark)`, the
watermark trailing the newest origin by the rule's late tolerance).

Windows are aligned to multiples of their hop since the epoch, as eKuiper aligns them; an empty window emits
nothing.

`Window` keeps rows and hands each closed window's rows over (a query that outputs every row needs them).
`RunningWindow` has the same boundaries, but builds each window's content as rows arrive (running aggregates
per group, `aggregates.Groups`) and keeps no rows but a sliding window's, which it needs to know what leaves.
"""

from __future__ import annotations

import bisect
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from operator import itemgetter
from typing import Any, Generic, Protocol, TypeVar

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


# -- running windows ---------------------------------------------------------------------------------------


class Content(Protocol):
    """What a running window builds per window: rows go in (with their order: time, or sequence number)
    and, in a sliding window (FIFO), leave oldest first."""

    def add(self, row: Row, order: int) -> None: ...

    def remove(self, row: Row) -> None: ...


C = TypeVar("C", bound=Content)
_TS = itemgetter(0)


def _floor(spec: WindowSpec, t: int) -> int:
    """The latest window end at or before `t` (as `Window._floor`)."""
    hop = spec.hop if spec.kind is not WindowKind.SLIDING else 1
    size = spec.size if spec.kind is not WindowKind.SLIDING else 0
    return ((t - size) // hop) * hop + size


class RunningWindow(Generic[C]):
    """`Window`'s windows, lateness and alignment, for content built incrementally: `new_content(fifo)`
    makes a window's content, and each window that closes goes to `sink(start, end, content)` at once, before
    any later row changes it. A row costs one `add` per window it belongs to (size/hop of them), and in a
    sliding window one `remove` when it leaves; nothing is recomputed from all the rows of a window, except a
    sliding window's after an out-of-order row landed inside the range it covers."""

    def __init__(self, spec: WindowSpec, new_content: Callable[[bool], C], sink: Callable[[int, int, C], None]):
        self.spec = spec
        self.late = 0
        """Rows dropped because every window they belonged to had been emitted already."""
        self._new = new_content
        self._sink = sink
        self._emitted_until: int | None = None
        self._seq = 0
        self._open: dict[int, C] = {}
        """Tumbling, hopping and count windows that have rows: start -> content."""
        # Sliding: rows sorted by time, the triggers to come, and the range [lo, hi) of rows the content holds.
        self._rows: list[tuple[int, int, Row]] = []
        self._triggers: list[int] = []
        self._content: C | None = None
        self._lo = 0
        self._hi = 0
        self._covered = (0, -1)
        """[first, last] time the content covers."""
        self._dirty = False

    def __len__(self) -> int:
        return len(self._rows)

    def add(self, ts: int, row: Row) -> None:
        """Take one row at time `ts` (ms). A count window may emit at once; time windows emit on `advance`."""
        spec = self.spec
        if spec.kind is WindowKind.COUNT:
            self._add_counted(row)
            return
        if self._emitted_until is None:
            self._emitted_until = _floor(spec, ts)
        if spec.kind is WindowKind.SLIDING:
            self._add_sliding(ts, row)
            return
        hop, size = spec.hop, spec.size
        start = (ts // hop) * hop  # the last window containing ts
        emitted = self._emitted_until
        if start + size <= emitted:
            self.late += 1
            return
        opened = self._open
        while start + size > ts and start + size > emitted:
            content = opened.get(start)
            if content is None:
                content = opened[start] = self._new(False)
            content.add(row, ts)
            start -= hop

    def advance(self, now: int) -> None:
        """Emit every window that has closed by `now` (ms), oldest first."""
        spec = self.spec
        if spec.kind is WindowKind.COUNT:
            return
        if self._emitted_until is None:
            self._emitted_until = _floor(spec, now)
            return
        if spec.kind is WindowKind.SLIDING:
            self._advance_sliding(now)
            return
        opened = self._open
        size = spec.size
        while opened:
            start = min(opened)
            end = start + size
            if end > now:
                return
            self._emitted_until = max(self._emitted_until, end)
            self._sink(start, end, opened.pop(start))
        self._emitted_until = max(self._emitted_until, _floor(spec, now))

    def next_deadline(self) -> int | None:
        """When `advance` next has something to do (ms), if known: for timers."""
        spec = self.spec
        if spec.kind is WindowKind.COUNT or self._emitted_until is None:
            return None
        if spec.kind is WindowKind.SLIDING:
            return self._triggers[0] if self._triggers else None
        return min(self._open) + spec.size if self._open else None

    # -- count window --------------------------------------------------------------------------------
    def _add_counted(self, row: Row) -> None:
        size, hop = self.spec.size, self.spec.hop
        seq = self._seq
        self._seq += 1
        opened = self._open
        start = (seq // hop) * hop  # windows start every `hop` rows and hold `size`
        while start >= 0 and start + size > seq:
            content = opened.get(start)
            if content is None:
                content = opened[start] = self._new(False)
            content.add(row, seq)
            start -= hop
        full = seq + 1 - size
        if full >= 0 and full % hop == 0:
            self._sink(full, seq + 1, opened.pop(full))

    # -- sliding -------------------------------------------------------------------------------------
    def _add_sliding(self, ts: int, row: Row) -> None:
        assert self._emitted_until is not None
        trigger = ts + self.spec.hop
        if trigger < self._emitted_until:  # its own window was due before an emitted one
            self.late += 1
            return
        triggers = self._triggers
        if not triggers or trigger >= triggers[-1]:
            triggers.append(trigger)
        else:
            bisect.insort(triggers, trigger)
        rows = self._rows
        entry = (ts, self._seq, row)
        self._seq += 1
        if not rows or ts >= rows[-1][0]:
            rows.append(entry)
            index = len(rows) - 1
        else:
            index = bisect.bisect_right(rows, ts, key=_TS)
            rows.insert(index, entry)
        if index < self._hi:
            # Out of order, before rows the content holds: shift the range; inside it: rebuild the content
            # at the next emission (FIFO accumulators need rows in order).
            first, last = self._covered
            if ts < first:
                self._lo += 1
            elif ts <= last:
                self._dirty = True
            self._hi += 1

    def _advance_sliding(self, now: int) -> None:
        assert self._emitted_until is not None
        spec = self.spec
        rows = self._rows
        triggers = self._triggers
        while triggers and triggers[0] <= now:
            trigger = triggers.pop(0)
            start = trigger - spec.hop - spec.size + 1  # (trigger - size - delay, trigger]
            lo = bisect.bisect_left(rows, start, key=_TS)
            hi = bisect.bisect_left(rows, trigger + 1, key=_TS)
            content = self._move(lo, hi)
            self._covered = (start, trigger)
            if hi > lo:
                self._sink(start, trigger + 1, content)
            self._emitted_until = max(self._emitted_until, trigger)
        # Rows that no pending or future trigger's window reaches.
        floor = self._emitted_until
        oldest = min(triggers[0] if triggers else floor, floor) - spec.hop - spec.size + 1
        drop = bisect.bisect_left(rows, oldest, key=_TS)
        if drop:
            del rows[:drop]
            if drop > self._lo:
                self._dirty = True  # cannot happen (the content starts at `oldest` or later); stay correct
            self._lo = max(self._lo - drop, 0)
            self._hi = max(self._hi - drop, 0)

    def _move(self, lo: int, hi: int) -> C:
        """The content over rows[lo:hi], from the content over the previous range (both ends only move on)."""
        rows = self._rows
        content = self._content
        if content is None or self._dirty:
            content = self._content = self._new(True)
            for ts, _, row in rows[lo:hi]:
                content.add(row, ts)
            self._dirty = False
        else:
            old_lo, old_hi = self._lo, self._hi
            for i in range(old_lo, min(lo, old_hi)):
                content.remove(rows[i][2])
            for i in range(max(old_hi, lo), hi):
                ts, _, row = rows[i]
                content.add(row, ts)
        self._lo, self._hi = lo, hi
        return content
