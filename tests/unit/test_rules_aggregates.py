"""Running aggregates against the naive recomputation (the functions of `functions.AGGREGATES` over all the
values of a window): add-only with values in any order, FIFO (sliding) with values leaving oldest first, and
whole windows (tumbling, hopping, sliding, count) against the same query evaluated over the window's rows."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules_engine.application.sql.aggregates import RUNNING, Accumulator, Groups
from rules_engine.application.sql.compiler import compile_query
from rules_engine.application.sql.functions import AGGREGATES
from rules_engine.application.sql.windows import RunningWindow, Window, WindowKind, WindowSpec

NAMES = sorted(RUNNING)
EXTRA = {"percentile_cont": (0.3,), "percentile_disc": (0.7,)}

numbers = st.one_of(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False),
)
values = st.one_of(numbers, st.none(), st.booleans(), st.sampled_from(["a", "b", "zz"]))


def same(got: Any, want: Any) -> bool:
    """Equal, floats within rounding; of the same type, but for statistics' int results (pvariance([0]) is 0)."""
    if isinstance(want, float) and isinstance(got, int | float):
        return got == pytest.approx(want, rel=1e-9, abs=1e-6)
    if type(want) is int and type(got) is float:
        return got == pytest.approx(want, rel=1e-9, abs=1e-6)
    if isinstance(want, list) and isinstance(got, list):
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want, strict=True))
    return bool(got == want) and type(got) is type(want)


def naive(name: str, vals: list[Any]) -> Any:
    return AGGREGATES[name].fn(vals, *EXTRA.get(name, ()))


def new(name: str, fifo: bool) -> Accumulator:
    return RUNNING[name](fifo, EXTRA.get(name, ()))


def test_every_aggregate_has_a_running_accumulator() -> None:
    assert set(RUNNING) == set(AGGREGATES)


@settings(max_examples=150, deadline=None)
@given(vals=st.lists(values, max_size=40), name=st.sampled_from(NAMES))
def test_add_only_matches_the_naive_function(vals: list[Any], name: str) -> None:
    acc = new(name, fifo=False)
    for i, v in enumerate(vals):
        acc.add(v, i)
    assert same(acc.result(), naive(name, vals))


@settings(max_examples=150, deadline=None)
@given(
    vals=st.lists(values, max_size=40),
    orders=st.lists(st.integers(min_value=0, max_value=20), min_size=40, max_size=40),
    name=st.sampled_from(["first_value", "last_value", "collect", "sum", "max"]),
)
def test_add_only_out_of_order_matches_the_values_in_window_order(
    vals: list[Any], orders: list[int], name: str
) -> None:
    acc = new(name, fifo=False)
    for v, order in zip(vals, orders, strict=False):
        acc.add(v, order)
    # Window order: by time, arrivals of the same time in arrival order.
    ordered = [v for _, _, v in sorted(zip(orders, range(len(vals)), vals, strict=False))]
    assert same(acc.result(), naive(name, ordered))


@settings(max_examples=150, deadline=None)
@given(
    vals=st.lists(values, max_size=60),
    steps=st.lists(st.integers(min_value=0, max_value=4), max_size=60),
    name=st.sampled_from(NAMES),
)
def test_fifo_matches_the_naive_function_over_what_is_in_the_window(
    vals: list[Any], steps: list[int], name: str
) -> None:
    """Values enter in order; after each, `step` of the oldest leave (as a sliding window's)."""
    acc = new(name, fifo=True)
    lo = 0
    for hi, v in enumerate(vals, start=1):
        acc.add(v, hi)
        for _ in range(steps[hi - 1] if hi - 1 < len(steps) else 0):
            if lo < hi:
                acc.remove(vals[lo])
                lo += 1
        assert same(acc.result(), naive(name, vals[lo:hi])), (lo, hi)


def test_fifo_sums_do_not_drift_after_large_values_leave() -> None:
    acc = new("sum", fifo=True)
    for v in [1e16, 1.0, 2.5, -1e16, 0.25]:
        acc.add(v, 0)
    acc.remove(1e16)
    acc.remove(1.0)
    assert acc.result() == 2.5 - 1e16 + 0.25
    acc.remove(2.5)
    acc.remove(-1e16)
    assert acc.result() == 0.25


def test_infinities_and_nan_in_sums_as_python_sums_them() -> None:
    for vals in ([math.inf, 1.0], [math.inf, -math.inf], [math.nan, 2], [-math.inf]):
        acc = new("sum", fifo=True)
        for v in vals:
            acc.add(v, 0)
        want = sum(vals)
        got = acc.result()
        assert (math.isnan(got) and math.isnan(want)) or got == want
    acc = new("avg", fifo=True)
    for v in [math.inf, 3.0, 5.0]:
        acc.add(v, 0)
    acc.remove(math.inf)
    assert acc.result() == 4.0


# -- whole windows -------------------------------------------------------------------------------------------

SQL = (
    "SELECT avg(t) AS a, sum(t) AS s, min(t) AS lo, max(t) AS hi, count(*) AS n, count(t) AS c, stddev(t) AS sd, "
    "vars(t) AS v, median(t) AS med, percentile_cont(t, 0.9) AS p, first_value(t) AS f, last_value(t) AS l, "
    "collect(t) AS all, k FROM events GROUP BY {window}, k"
)
SPECS = {
    "TumblingWindow(ms, 10)": WindowSpec(WindowKind.TUMBLING, 10, 10),
    "HoppingWindow(ms, 10, 4)": WindowSpec(WindowKind.HOPPING, 10, 4),
    "SlidingWindow(ms, 7)": WindowSpec(WindowKind.SLIDING, 7, 0),
    "SlidingWindow(ms, 7, 3)": WindowSpec(WindowKind.SLIDING, 7, 3),
    "CountWindow(5, 2)": WindowSpec(WindowKind.COUNT, 5, 2),
}
events = st.lists(
    st.tuples(st.integers(min_value=0, max_value=5), st.one_of(numbers, st.none()), st.sampled_from(["x", "y"])),
    max_size=50,
)


@settings(max_examples=100, deadline=None)
@given(window=st.sampled_from(sorted(SPECS)), evs=events, late=st.integers(min_value=0, max_value=6))
def test_running_windows_emit_what_the_rows_give(window: str, evs: list[tuple[int, Any, str]], late: int) -> None:
    """The same events (times move on by 0-5 ms; with `late`, some arrive that much out of order) through a
    window of rows, grouped and aggregated naively, and through a running window: the same output rows."""
    query = compile_query(SQL.format(window=window))
    spec = SPECS[window]
    assert query.window == spec
    assert query.aggregates
    rows_window = Window(spec)
    naive_out: list[tuple[int, int, Any, dict[str, Any]]] = []
    running_out: list[tuple[int, int, Any, dict[str, Any]]] = []

    def closed(start: int, end: int, content: Groups) -> None:
        running_out.extend((start, end, key, query.project(g)) for key, g in content.groups.items())

    running = RunningWindow(spec, query.new_content, closed)
    now = 0
    for i, (step, t, k) in enumerate(evs):
        now += step
        ts = now - (late if late and i % 3 == 2 else 0)  # event time: every third arrives late
        row = {"t": t, "k": k, "i": i}
        emissions = rows_window.add(ts, row)
        running.add(ts, row)
        emissions += rows_window.advance(now - 6)
        running.advance(now - 6)
        for e in emissions:
            groups: dict[Any, list[dict[str, Any]]] = {}
            for r in e.rows:
                groups.setdefault(query.group_key(r), []).append(r)
            naive_out.extend((e.start, e.end, key, query.project(rows)) for key, rows in groups.items())
    assert running.late == rows_window.late
    assert len(running_out) == len(naive_out)
    # The groups of one window may come in another order (no order is promised between groups).
    by_window = sorted(running_out, key=lambda o: (o[0], o[1], o[2]))
    for got, want in zip(by_window, sorted(naive_out, key=lambda o: (o[0], o[1], o[2])), strict=True):
        assert got[:3] == want[:3]
        for column, value in want[3].items():
            if column in ("sd", "v") and value is not None:  # Welford after removals: rounding grows with size
                assert got[3][column] == pytest.approx(value, rel=1e-6, abs=1e-3), (column, got, want)
            else:
                assert same(got[3][column], value), (column, got, want)


def test_integer_sums_stay_integers() -> None:
    for fifo in (False, True):
        acc = new("sum", fifo=fifo)
        for v in [2, 1.5, 3]:
            acc.add(v, 0)
        if fifo:
            acc.remove(2)
            acc.remove(1.5)
            assert type(acc.result()) is int
            assert acc.result() == 3
        else:
            assert acc.result() == 6.5
