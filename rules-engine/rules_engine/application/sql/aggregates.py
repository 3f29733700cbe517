"""Running aggregates: a window keeps, per group, one accumulator per aggregate call instead of its rows.

Each accumulator gives what the plain function of `functions.py` gives over the same values in window order
(the reference the tests hold it to): count, sum and avg keep a count and a compensated sum; min and max the
best value so far; var/stddev Welford's mean and M2; median and the percentiles a sorted list of the numbers;
first_value and last_value the value at either end; collect the values.

Two modes. Add-only (tumbling, hopping and count windows, which never lose a row before they are emitted):
values may arrive out of window order (event time), and `order` (the row's timestamp, or sequence number)
puts first_value, last_value and collect right. FIFO (sliding windows): values are added in window order and
leave oldest first (`remove`); min and max keep a monotonic deque, first_value a deque of the values present.
Float sums and Welford's M2 after removals can differ from a fresh computation in the last bits.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

from rules_engine.application.sql.functions import percentile_cont_sorted, percentile_disc_sorted

Row = dict[str, Any]


def _is_number(v: Any) -> bool:
    t = type(v)
    return t is int or t is float or (t is not bool and isinstance(v, int | float))


class Accumulator:
    """One aggregate over the values of one group of a window."""

    __slots__ = ()

    def add(self, v: Any, order: int) -> None:
        raise NotImplementedError

    def remove(self, v: Any) -> None:
        """The oldest value still in leaves (FIFO mode only)."""
        raise NotImplementedError

    def result(self) -> Any:
        raise NotImplementedError


class Count(Accumulator):
    __slots__ = ("n",)

    def __init__(self) -> None:
        self.n = 0

    def add(self, v: Any, order: int) -> None:
        if v is not None:
            self.n += 1

    def remove(self, v: Any) -> None:
        if v is not None:
            self.n -= 1

    def result(self) -> Any:
        return self.n


class Sum(Accumulator):
    """Numbers only (as `_numbers`): integers summed exactly, floats with Neumaier's compensation (so a value
    that leaves takes its own contribution with it), infinities and NaN counted apart."""

    __slots__ = ("avg", "comp", "floats", "ints", "n", "special", "total")

    def __init__(self, avg: bool = False) -> None:
        self.avg = avg
        self.n = 0
        self.ints = 0
        self.floats = 0
        self.total = 0.0
        self.comp = 0.0
        self.special: dict[str, int] | None = None  # "inf", "-inf", "nan" -> how many

    def _float(self, x: float) -> None:
        total = self.total
        t = total + x
        if abs(total) >= abs(x):
            self.comp += (total - t) + x
        else:
            self.comp += (x - t) + total
        self.total = t

    def add(self, v: Any, order: int) -> None:
        t = type(v)
        if t is int:
            self.ints += v
        elif t is float:
            if math.isfinite(v):
                self._float(v)
            else:
                self._special(v, 1)
            self.floats += 1
        elif v is None or t is bool or not isinstance(v, int | float):
            return
        else:
            self.add(int(v) if isinstance(v, int) else float(v), order)
            return
        self.n += 1

    def remove(self, v: Any) -> None:
        t = type(v)
        if t is int:
            self.ints -= v
        elif t is float:
            if math.isfinite(v):
                self._float(-v)
            else:
                self._special(v, -1)
            self.floats -= 1
            if not self.floats:
                self.total = self.comp = 0.0  # nothing left to drift
        elif v is None or t is bool or not isinstance(v, int | float):
            return
        else:
            self.remove(int(v) if isinstance(v, int) else float(v))
            return
        self.n -= 1

    def _special(self, v: float, delta: int) -> None:
        key = "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        special = self.special if self.special is not None else {}
        count = special.get(key, 0) + delta
        if count:
            special[key] = count
        else:
            special.pop(key, None)
        self.special = special or None

    def value(self) -> Any:
        if not self.floats:
            return self.ints
        if self.special:
            if "nan" in self.special or len(self.special) > 1:
                return math.nan
            return float(next(iter(self.special)))
        return self.ints + (self.total + self.comp)

    def result(self) -> Any:
        if not self.n:
            return None
        total = self.value()
        return total / self.n if self.avg else total


def _kind(v: Any) -> type:
    """Values comparable with each other: numbers (bool included, as Python compares them), or one type."""
    t = type(v)
    return float if t is int or t is float or t is bool or isinstance(v, int | float) else t


def _naive_extreme(values: Sequence[Any], smallest: bool) -> Any:
    try:
        return min(values) if smallest else max(values)
    except TypeError:
        return None


class Extreme(Accumulator):
    """min or max, add-only. Values of different kinds (a number and a string) make it NULL, as `_min`;
    numbers and strings keep only the best, other kinds (lists) their values."""

    __slots__ = ("best", "kinds", "others", "smallest")

    def __init__(self, smallest: bool) -> None:
        self.smallest = smallest
        self.best: dict[type, Any] = {}
        self.others: list[Any] = []
        self.kinds = 0

    def add(self, v: Any, order: int) -> None:
        if v is None:
            return
        kind = _kind(v)
        if kind is not float and kind is not str:
            self.others.append(v)
            if kind not in self.best:
                self.best[kind] = None
            return
        best = self.best
        if kind not in best:
            best[kind] = v
        else:
            b = best[kind]
            if (v < b) if self.smallest else (v > b):
                best[kind] = v

    def result(self) -> Any:
        best = self.best
        if len(best) != 1:
            return None
        ((kind, b),) = best.items()
        if kind is float or kind is str:
            return b
        return _naive_extreme(self.others, self.smallest)


class SlidingExtreme(Accumulator):
    """min or max in FIFO mode: per kind a monotonic deque of (index, value), the best at its front."""

    __slots__ = ("added", "counts", "deques", "removed", "smallest")

    def __init__(self, smallest: bool) -> None:
        self.smallest = smallest
        self.deques: dict[type, deque[tuple[int, Any]]] = {}
        self.counts: dict[type, int] = {}
        self.added = 0
        self.removed = 0

    def add(self, v: Any, order: int) -> None:
        index = self.added
        self.added += 1
        if v is None:
            return
        kind = _kind(v)
        self.counts[kind] = self.counts.get(kind, 0) + 1
        dq = self.deques.get(kind)
        if dq is None:
            dq = self.deques[kind] = deque()
        if kind is float or kind is str:
            # Drop the values this one outlives and beats: they can never be the answer again.
            if self.smallest:
                while dq and dq[-1][1] > v:
                    dq.pop()
            else:
                while dq and dq[-1][1] < v:
                    dq.pop()
        dq.append((index, v))

    def remove(self, v: Any) -> None:
        index = self.removed
        self.removed += 1
        if v is None:
            return
        kind = _kind(v)
        count = self.counts[kind] - 1
        dq = self.deques[kind]
        if dq and dq[0][0] == index:
            dq.popleft()
        if count:
            self.counts[kind] = count
        else:
            del self.counts[kind]
            del self.deques[kind]

    def result(self) -> Any:
        if len(self.counts) != 1:
            return None
        ((kind, dq),) = self.deques.items()
        if kind is float or kind is str:
            return dq[0][1]
        return _naive_extreme([v for _, v in dq], self.smallest)


class Variance(Accumulator):
    """Welford's running mean and M2 over the numbers (population or sample; optionally its square root)."""

    __slots__ = ("m2", "mean", "n", "root", "sample")

    def __init__(self, sample: bool, root: bool) -> None:
        self.sample = sample
        self.root = root
        self.n = 0
        self.mean = 0.0
        self.m2 = 0.0

    def add(self, v: Any, order: int) -> None:
        if v is None or not _is_number(v):
            return
        self.n += 1
        d = v - self.mean
        self.mean += d / self.n
        self.m2 += d * (v - self.mean)

    def remove(self, v: Any) -> None:
        if v is None or not _is_number(v):
            return
        n = self.n - 1
        if n <= 0:
            self.n, self.mean, self.m2 = 0, 0.0, 0.0
            return
        mean = (self.n * self.mean - v) / n
        # One value left varies by nothing; else what rounding left below zero is zero.
        self.m2 = max(self.m2 - (v - self.mean) * (v - mean), 0.0) if n > 1 else 0.0
        self.mean = mean
        self.n = n

    def result(self) -> Any:
        n = self.n
        if n < (2 if self.sample else 1):
            return None
        var = self.m2 / (n - 1 if self.sample else n)
        return math.sqrt(var) if self.root else var


class Sorted(Accumulator):
    """The numbers kept sorted, for median and the percentiles."""

    __slots__ = ("answer", "values")

    def __init__(self, answer: Callable[[list[Any]], Any]) -> None:
        self.values: list[Any] = []
        self.answer = answer

    def add(self, v: Any, order: int) -> None:
        if v is not None and _is_number(v):
            bisect.insort(self.values, v)

    def remove(self, v: Any) -> None:
        if v is not None and _is_number(v):
            values = self.values
            i = bisect.bisect_left(values, v)
            if i < len(values) and values[i] == v:
                del values[i]

    def result(self) -> Any:
        return self.answer(self.values) if self.values else None


def _median(s: list[Any]) -> Any:
    n = len(s)
    i = n // 2
    return s[i] if n % 2 else (s[i - 1] + s[i]) / 2


class First(Accumulator):
    """first_value, add-only: the non-null value of the lowest order (the earliest arrival among equals)."""

    __slots__ = ("order", "value")

    def __init__(self) -> None:
        self.order: int | None = None
        self.value: Any = None

    def add(self, v: Any, order: int) -> None:
        if v is not None and (self.order is None or order < self.order):
            self.order, self.value = order, v

    def result(self) -> Any:
        return self.value


class Last(Accumulator):
    """last_value: the non-null value of the highest order (the latest arrival among equals). In FIFO mode
    the newest value leaves last, so only how many values are present matters."""

    __slots__ = ("n", "order", "value")

    def __init__(self) -> None:
        self.order: int | None = None
        self.value: Any = None
        self.n = 0

    def add(self, v: Any, order: int) -> None:
        if v is not None:
            self.n += 1
            if self.order is None or order >= self.order:
                self.order, self.value = order, v

    def remove(self, v: Any) -> None:
        if v is not None:
            self.n -= 1
            if not self.n:
                self.order, self.value = None, None

    def result(self) -> Any:
        return self.value


class SlidingFirst(Accumulator):
    __slots__ = ("added", "removed", "values")

    def __init__(self) -> None:
        self.values: deque[tuple[int, Any]] = deque()
        self.added = 0
        self.removed = 0

    def add(self, v: Any, order: int) -> None:
        if v is not None:
            self.values.append((self.added, v))
        self.added += 1

    def remove(self, v: Any) -> None:
        values = self.values
        if values and values[0][0] == self.removed:
            values.popleft()
        self.removed += 1

    def result(self) -> Any:
        return self.values[0][1] if self.values else None


class Collect(Accumulator):
    """collect: every value (NULLs too) in window order."""

    __slots__ = ("in_order", "items")

    def __init__(self) -> None:
        self.items: deque[tuple[int, Any]] = deque()
        self.in_order = True

    def add(self, v: Any, order: int) -> None:
        items = self.items
        if items and order < items[-1][0]:
            self.in_order = False
        items.append((order, v))

    def remove(self, v: Any) -> None:
        self.items.popleft()

    def result(self) -> Any:
        items = self.items if self.in_order else sorted(self.items, key=_ORDER)
        return [v for _, v in items]


_ORDER = itemgetter(0)

# name -> (fifo, extra constant arguments) -> a new accumulator
Factory = Callable[[bool, Sequence[Any]], Accumulator]


def _percentile(answer: Callable[[list[Any], Any], Any]) -> Factory:
    return lambda fifo, extra: Sorted(lambda s: answer(s, extra[0]))


RUNNING: dict[str, Factory] = {
    "avg": lambda fifo, extra: Sum(avg=True),
    "sum": lambda fifo, extra: Sum(),
    "count": lambda fifo, extra: Count(),
    "min": lambda fifo, extra: SlidingExtreme(True) if fifo else Extreme(True),
    "max": lambda fifo, extra: SlidingExtreme(False) if fifo else Extreme(False),
    "stddev": lambda fifo, extra: Variance(sample=False, root=True),
    "stddevs": lambda fifo, extra: Variance(sample=True, root=True),
    "var": lambda fifo, extra: Variance(sample=False, root=False),
    "vars": lambda fifo, extra: Variance(sample=True, root=False),
    "median": lambda fifo, extra: Sorted(_median),
    "percentile_cont": _percentile(percentile_cont_sorted),
    "percentile_disc": _percentile(percentile_disc_sorted),
    "first_value": lambda fifo, extra: SlidingFirst() if fifo else First(),
    "last_value": lambda fifo, extra: Last(),
    "collect": lambda fifo, extra: Collect(),
}
"""A running accumulator for every aggregate of `functions.AGGREGATES`."""


# -- groups ----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Slot:
    """One distinct aggregate call of a query: what it aggregates (a row -> value) and its accumulator."""

    name: str
    arg: Callable[[Row], Any]
    extra: tuple[Any, ...] = ()

    def new(self, fifo: bool) -> Accumulator:
        return RUNNING[self.name](fifo, self.extra)


class Group:
    """What a windowed query's SELECT and HAVING see of one group: its row count (count(*)), its last row
    in window order (bare columns, meta()) and its accumulators (aggregates, by slot index)."""

    __slots__ = ("_adders", "_removers", "accs", "last", "last_order", "n")

    def __init__(self, slots: Sequence[Slot], fifo: bool) -> None:
        self.n = 0
        self.last: Row = {}
        self.last_order = -(1 << 62)
        self.accs = [s.new(fifo) for s in slots]
        # Bound methods, looked up once: a group takes a row per window it is in, for every rule.
        self._adders = [(s.arg, acc.add) for s, acc in zip(slots, self.accs, strict=True)]
        self._removers = [(s.arg, acc.remove) for s, acc in zip(slots, self.accs, strict=True)] if fifo else []

    @classmethod
    def of(cls, rows: Sequence[Row], slots: Sequence[Slot]) -> Group:
        """A group of the given rows, in window order (the naive way: every aggregate from all rows)."""
        group = cls(slots, fifo=False)
        for i, row in enumerate(rows):
            group.add(row, i)
        return group

    def add(self, row: Row, order: int) -> None:
        self.n += 1
        if order >= self.last_order:
            self.last = row
            self.last_order = order
        for arg, add in self._adders:
            add(arg(row), order)

    def remove(self, row: Row) -> None:
        self.n -= 1
        for arg, remove in self._removers:
            remove(arg(row))


class Groups:
    """A window's content for an aggregating query: its groups (by the GROUP BY key), in first-seen order."""

    __slots__ = ("_fifo", "_key", "_slots", "groups")

    def __init__(self, key: Callable[[Row], Any], slots: Sequence[Slot], fifo: bool) -> None:
        self.groups: dict[Any, Group] = {}
        self._key = key
        self._slots = slots
        self._fifo = fifo

    def add(self, row: Row, order: int) -> None:
        key = self._key(row)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = Group(self._slots, self._fifo)
        group.add(row, order)

    def remove(self, row: Row) -> None:
        key = self._key(row)
        group = self.groups[key]
        group.remove(row)
        if not group.n:
            del self.groups[key]
