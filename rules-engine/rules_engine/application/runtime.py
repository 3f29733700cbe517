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
from rules_engine.application.sql.aggregates import Groups
from rules_engine.application.sql.compiler import Query, Row
from rules_engine.application.sql.windows import Emission, RunningWindow, Window, WindowKind

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
    fire: Fire
    counters: Counters = field(default_factory=Counters)
    window: Window | RunningWindow[Groups] | None = None
    """Rows (a query that outputs each row of a window), or running aggregates per group."""
    _latched: dict[Any, bool] = field(default_factory=dict)
    _last_fired: dict[Any, int] = field(default_factory=dict)
    _max_ts: int | None = None
    _now: int = 0
    _arrived: int = 0

    def __post_init__(self) -> None:
        spec = self.query.window
        if spec is not None:
            self.window = (
                RunningWindow(spec, self.query.new_content, self._closed) if self.query.aggregates else Window(spec)
            )
        self.rearm = self.query.rearm
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
            self._now, self._arrived = now_ms, arrived_ns
            window = self.window
            if self._event_time:
                ts = row.get("origin", 0) // 1_000_000
                self._emit(window.add(ts, row), now_ms, arrived_ns)
                self._max_ts = ts if self._max_ts is None else max(self._max_ts, ts)
                self._emit(window.advance(self._max_ts - self._late_tolerance), now_ms, arrived_ns)
            else:
                self._emit(window.add(now_ms, row), now_ms, arrived_ns)
                if window.spec.kind is WindowKind.SLIDING:
                    self._emit(window.advance(now_ms), now_ms, arrived_ns)
        elapsed = time.perf_counter_ns() - started
        c.eval_ns_total += elapsed
        c.evaluations += 1
        if elapsed > c.eval_ns_max:
            c.eval_ns_max = elapsed

    def tick(self, now_ms: int) -> None:
        """Close the processing-time windows due by `now_ms` (called from a timer)."""
        if self.window is not None and not self._event_time:
            self._now, self._arrived = now_ms, 0
            self._emit(self.window.advance(now_ms), now_ms, 0)

    def next_deadline(self) -> int | None:
        if self.window is None or self._event_time:
            return None
        return self.window.next_deadline()

    # -- windows -------------------------------------------------------------------------------------
    def _emit(self, emissions: list[Emission] | None, now_ms: int, arrived_ns: int) -> None:
        """Windows of rows (a query without aggregates): every row of a group whose HAVING holds is output."""
        if not emissions:
            return
        query = self.query
        for emission in emissions:
            groups: dict[Any, list[Row]] = {}
            key_of = query.group_key
            for row in emission.rows:
                groups.setdefault(key_of(row), []).append(row)
            for key, rows in groups.items():
                group = query.group(rows)
                held = True if query.having is None else query.having(group)
                if held is True:
                    self.counters.matched += 1
                    self._observe(key, True, [query.project(r) for r in rows], group, now_ms, arrived_ns)
                elif held is False and self._transition:
                    self._observe(key, False, None, group, now_ms, arrived_ns)

    def _closed(self, start: int, end: int, content: Groups) -> None:
        """A window of running aggregates has closed: one output row per group whose HAVING holds."""
        query = self.query
        having = query.having
        now_ms, arrived_ns = self._now, self._arrived
        for key, group in content.groups.items():
            held = True if having is None else having(group)
            if held is True:
                self.counters.matched += 1
                self._observe(key, True, [query.project(group)], group, now_ms, arrived_ns)
            elif held is False and self._transition:
                self._observe(key, False, None, group, now_ms, arrived_ns)

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
