"""Window semantics with a controlled clock: tumbling, hopping, sliding and count boundaries, late and
out-of-order events (times in ms; windows are aligned to multiples of their hop)."""

from __future__ import annotations

from rules_engine.application.sql.windows import Emission, Window, WindowKind, WindowSpec


def ids(emissions: list[Emission]) -> list[tuple[int, int, list[int]]]:
    return [(e.start, e.end, [r["i"] for r in e.rows]) for e in emissions]


def feed(w: Window, *events: tuple[int, int]) -> list[Emission]:
    out: list[Emission] = []
    for ts, i in events:
        out += w.add(ts, {"i": i})
    return out


def test_tumbling_emits_each_closed_window_once_at_its_boundary() -> None:
    w = Window(WindowSpec(WindowKind.TUMBLING, 10_000, 10_000))
    feed(w, (1_000, 1), (9_999, 2), (10_000, 3))
    assert w.advance(9_999) == []  # not closed yet
    assert ids(w.advance(10_000)) == [(0, 10_000, [1, 2])]  # the boundary row belongs to the next window
    assert w.advance(15_000) == []
    feed(w, (15_000, 4))
    assert ids(w.advance(20_000)) == [(10_000, 20_000, [3, 4])]
    assert w.advance(60_000) == []  # empty windows emit nothing
    feed(w, (61_000, 5))
    assert ids(w.advance(70_000)) == [(60_000, 70_000, [5])]
    assert w.next_deadline() is None


def test_tumbling_catches_up_over_several_windows_and_skips_empty_ones() -> None:
    w = Window(WindowSpec(WindowKind.TUMBLING, 1_000, 1_000))
    feed(w, (100, 1), (1_100, 2), (5_500, 3))
    assert w.next_deadline() == 1_000
    assert ids(w.advance(6_000)) == [(0, 1_000, [1]), (1_000, 2_000, [2]), (5_000, 6_000, [3])]


def test_hopping_windows_overlap() -> None:
    w = Window(WindowSpec(WindowKind.HOPPING, 10_000, 5_000))  # 10 s windows every 5 s
    w.advance(0)
    feed(w, (1_000, 1), (6_000, 2), (11_000, 3))
    assert ids(w.advance(10_000)) == [(-5_000, 5_000, [1]), (0, 10_000, [1, 2])]
    assert ids(w.advance(15_000)) == [(5_000, 15_000, [2, 3])]
    assert ids(w.advance(20_000)) == [(10_000, 20_000, [3])]
    assert w.advance(40_000) == []


def test_sliding_emits_on_each_event_with_the_events_of_the_last_size() -> None:
    w = Window(WindowSpec(WindowKind.SLIDING, 3_000, 0))
    out = []
    for ts, i in [(1_000, 1), (2_000, 2), (3_500, 3), (4_000, 4), (7_500, 5)]:
        w.add(ts, {"i": i})
        out += w.advance(ts)
    assert [e[2] for e in ids(out)] == [[1], [1, 2], [1, 2, 3], [2, 3, 4], [5]]
    assert len(w) == 1  # rows older than every window still to come are dropped


def test_sliding_with_delay_waits_and_includes_what_arrived_meanwhile() -> None:
    w = Window(WindowSpec(WindowKind.SLIDING, 2_000, 1_000))
    w.add(1_000, {"i": 1})
    assert w.advance(1_500) == []
    w.add(1_800, {"i": 2})
    # (ts - size, ts + delay]: the trigger at 1000 + 1 s delay sees what arrived until then.
    assert ids(w.advance(2_000)) == [(-999, 2_001, [1, 2])]
    assert ids(w.advance(2_800)) == [(-199, 2_801, [1, 2])]


def test_count_window_tumbles_and_hops() -> None:
    w = Window(WindowSpec(WindowKind.COUNT, 3, 3))
    assert [e.rows for e in feed(w, (0, 1), (0, 2))] == []
    assert [[r["i"] for r in e.rows] for e in feed(w, (0, 3), (0, 4), (0, 5), (0, 6))] == [[1, 2, 3], [4, 5, 6]]
    hop = Window(WindowSpec(WindowKind.COUNT, 3, 1))
    got = [[r["i"] for r in e.rows] for e in feed(hop, *[(0, i) for i in range(1, 6)])]
    assert got == [[1, 2, 3], [2, 3, 4], [3, 4, 5]]


def test_out_of_order_events_land_in_their_window_and_late_ones_are_dropped() -> None:
    # Event time: the caller advances to the watermark (newest origin minus the late tolerance).
    w = Window(WindowSpec(WindowKind.TUMBLING, 10_000, 10_000))
    tolerance = 2_000
    newest = 0
    out: list[Emission] = []
    for ts, i in [(1_000, 1), (11_000, 2), (9_000, 3), (12_500, 4), (8_000, 5), (21_000, 6), (22_000, 7)]:
        out += w.add(ts, {"i": i})
        newest = max(newest, ts)
        out += w.advance(newest - tolerance)
    # 9000 came after 11000 but within the tolerance: counted in [0, 10000), in timestamp order.
    # 8000 came after the watermark passed 10000 (12500 - 2000): late, dropped.
    assert ids(out) == [(0, 10_000, [1, 3]), (10_000, 20_000, [2, 4])]
    assert w.late == 1
    assert ids(w.advance(30_000)) == [(20_000, 30_000, [6, 7])]


def test_late_for_hopping_only_when_every_window_of_the_event_has_closed() -> None:
    w = Window(WindowSpec(WindowKind.HOPPING, 10_000, 5_000))
    w.advance(0)
    feed(w, (6_000, 1))
    assert ids(w.advance(10_000)) == [(0, 10_000, [1])]
    feed(w, (7_000, 2))  # [0, 10000) is closed, but [5000, 15000) is still open
    assert w.late == 0
    feed(w, (4_000, 3))  # its windows [-5000, 5000) and [0, 10000) are closed
    assert w.late == 1
    assert ids(w.advance(15_000)) == [(5_000, 15_000, [1, 2])]
