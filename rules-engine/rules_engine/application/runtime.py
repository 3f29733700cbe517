"""One running rule: its compiled query, window, firing options and counters. Synchronous and pure: it is
handed rows and the time, and hands each firing (output rows) to `fire`, which runs the actions elsewhere.

Firing options, per partition (the device for a rule without window, the group for a windowed one):
- trigger_on "always": every match fires; "transition": a match fires only when the previous observation
  of the partition was false (or, with `rearm`, once the re-arm condition has held since the last firing);
- min_interval: a match within it of the partition's last firing does not fire (and, with transition,
  stays pending: it fires on the next match once the interval has passed).
An observation is a row whose WHERE is TRUE or FALSE (NULL, e.g. a reading the event lacks, is no
observation), or a window group whose HAVING is TRUE or FALSE.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rules_engine.application.models import RuleDefinition, RuleStatus
from rules_engine.application.sql.compiler import Eval, Query, Row
from rules_engine.application.sql.windows import Emission, Window, WindowKind

Fire = Callable[["RuleRuntime", list[Row], int], None]
"""(rule, output rows, arrival time in perf_counter_ns of the row that triggered it)."""


@dataclass
class Counters:
    records_in: int = 0
    matched: int = 0
    fired: int = 0
    suppressed: int = 0
    actions_fired: int = 0
    action_failures: int = 0
    last_error: str | None = None
    last_error_at: int | None = None
    last_fired: int | None = None
    eval_ns_total: int = 0
    eval_ns_max: int = 0
    evaluations: int = 0
    action_latency_ms: float | None = None

    def error(self, message: str) -> None:
        self.last_error = message
        self.last_error_at = time.time_ns()


@dataclass
class RuleRuntime:
    definition: RuleDefinition
    query: Query
    rearm: Eval | None
    fire: Fire
    counters: Counters = field(default_factory=Counters)
    window: Window | None = None
    _latched: dict[Any, bool] = field(default_factory=dict)
    _last_fired: dict[Any, int] = field(default_factory=dict)
    _max_ts: int | None = None

    def __post_init__(self) -> None:
        if self.query.window is not None:
            self.window = Window(self.query.window)
        options = self.definition.options
        self._transition = options.trigger_on == "transition"
        self._min_interval = options.min_interval_ms()
        self._event_time = options.is_event_time and self.query.window is not None
        self._late_tolerance = options.late_tolerance

    @property
    def id(self) -> str:
        return self.definition.id

    def status(self, running: bool) -> RuleStatus:
        c = self.counters
        return RuleStatus(
            id=self.id,
            status="running" if running else "stopped",
            records_in=c.records_in,
            matched=c.matched,
            fired=c.fired,
            suppressed=c.suppressed,
            actions_fired=c.actions_fired,
            action_failures=c.action_failures,
            late_events=self.window.late if self.window is not None else 0,
            last_error=c.last_error,
            last_error_at=c.last_error_at,
            last_fired=c.last_fired,
            evaluation_latency_avg_us=round(c.eval_ns_total / c.evaluations / 1000, 3) if c.evaluations else 0.0,
            evaluation_latency_max_us=round(c.eval_ns_max / 1000, 3),
            action_latency_last_ms=c.action_latency_ms,
        )

    # -- input ---------------------------------------------------------------------------------------
    def on_row(self, row: Row, now_ms: int, arrived_ns: int = 0) -> None:
        """Evaluate one event (a row) arriving at `now_ms` (processing time)."""
        started = time.perf_counter_ns()
        c = self.counters
        c.records_in += 1
        query = self.query
        where = query.where
        if self.window is None:
            matched = True if where is None else where(row)
            if matched is True:
                c.matched += 1
                self._observe(row.get("deviceName"), True, [query.project(row)], row, now_ms, arrived_ns)
            elif matched is False and self._transition:
                self._observe(row.get("deviceName"), False, None, row, now_ms, arrived_ns)
        elif where is None or where(row) is True:
            if self._event_time:
                ts = row.get("origin", 0) // 1_000_000
                self._emit(self.window.add(ts, row), now_ms, arrived_ns)
                self._max_ts = ts if self._max_ts is None else max(self._max_ts, ts)
                self._emit(self.window.advance(self._max_ts - self._late_tolerance), now_ms, arrived_ns)
            else:
                self._emit(self.window.add(now_ms, row), now_ms, arrived_ns)
                if self.window.spec.kind is WindowKind.SLIDING or self.window.spec.kind is WindowKind.COUNT:
                    self._emit(self.window.advance(now_ms), now_ms, arrived_ns)
        elapsed = time.perf_counter_ns() - started
        c.eval_ns_total += elapsed
        c.evaluations += 1
        if elapsed > c.eval_ns_max:
            c.eval_ns_max = elapsed

    def tick(self, now_ms: int) -> None:
        """Close the processing-time windows due by `now_ms` (called from a timer)."""
        if self.window is not None and not self._event_time:
            self._emit(self.window.advance(now_ms), now_ms, 0)

    def next_deadline(self) -> int | None:
        if self.window is None or self._event_time:
            return None
        return self.window.next_deadline()

    # -- windows -------------------------------------------------------------------------------------
    def _emit(self, emissions: list[Emission], now_ms: int, arrived_ns: int) -> None:
        query = self.query
        for emission in emissions:
            groups: dict[Any, list[Row]] = {}
            if query.group_by:
                for row in emission.rows:
                    key = tuple(g(row) for g in query.group_by)
                    groups.setdefault(key, []).append(row)
            else:
                groups[()] = emission.rows
            for key, rows in groups.items():
                held = True if query.having is None else query.having(rows)
                if held is True:
                    self.counters.matched += 1
                    out = [query.project(rows)] if query.aggregates else [query.project(r) for r in rows]
                    self._observe(key, True, out, rows, now_ms, arrived_ns)
                elif held is False and self._transition:
                    self._observe(key, False, None, rows, now_ms, arrived_ns)

    # -- firing --------------------------------------------------------------------------------------
    def _observe(self, key: Any, matched: bool, out: list[Row] | None, x: Any, now_ms: int, arrived_ns: int) -> None:
        c = self.counters
        if self._transition:
            latched = self._latched.get(key, False)
            if latched:
                if self.rearm is not None:
                    if self.rearm(x) is True:
                        self._latched[key] = False
                        latched = False
                elif not matched:
                    self._latched[key] = False
                    return
                if latched:
                    if matched:
                        c.suppressed += 1
                    return
            if not matched:
                return
        assert out is not None
        if self._min_interval:
            last = self._last_fired.get(key)
            if last is not None and now_ms - last < self._min_interval:
                c.suppressed += 1
                return
            self._last_fired[key] = now_ms
        if self._transition:
            self._latched[key] = True
        c.fired += 1
        c.last_fired = time.time_ns()
        self.fire(self, out, arrived_ns)
