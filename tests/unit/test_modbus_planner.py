"""Coalescing plans: few requests, protocol limits respected, every span served by exactly one block."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from device_modbus.planner import MAX_BITS, MAX_REGISTERS, Span, plan


def test_hundred_float32_resources_cost_two_requests() -> None:
    spans = [Span(i, "HOLDING_REGISTERS", i * 2, 2) for i in range(100)]
    blocks = plan(spans)
    assert [(b.start, b.count) for b in blocks] == [(0, 124), (124, 76)]


def test_small_gaps_are_bridged_large_ones_split() -> None:
    spans = [
        Span(0, "HOLDING_REGISTERS", 0, 1),
        Span(1, "HOLDING_REGISTERS", 10, 2),
        Span(2, "HOLDING_REGISTERS", 100, 1),
    ]
    blocks = plan(spans, max_gap=16)
    assert [(b.start, b.count) for b in blocks] == [(0, 12), (100, 1)]


def test_tables_are_never_mixed() -> None:
    spans = [Span(0, "COILS", 0, 1), Span(1, "HOLDING_REGISTERS", 0, 1), Span(2, "COILS", 5, 1)]
    blocks = plan(spans)
    assert sorted((b.table, b.start, b.count) for b in blocks) == [("COILS", 0, 6), ("HOLDING_REGISTERS", 0, 1)]


def test_overlapping_spans_share_a_block() -> None:
    spans = [
        Span(0, "HOLDING_REGISTERS", 10, 1),
        Span(1, "HOLDING_REGISTERS", 10, 1),
        Span(2, "HOLDING_REGISTERS", 8, 4),
    ]
    (block,) = plan(spans)
    assert (block.start, block.count) == (8, 4)
    assert sorted(s.index for s in block.spans) == [0, 1, 2]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["COILS", "HOLDING_REGISTERS", "INPUT_REGISTERS"]), st.integers(0, 5000), st.integers(1, 4)
        ),
        min_size=1,
        max_size=200,
    )
)
def test_every_span_is_covered_within_limits(raw: list[tuple[str, int, int]]) -> None:
    spans = [Span(i, t, a, c) for i, (t, a, c) in enumerate(raw)]
    blocks = plan(spans)
    served = sorted(s.index for b in blocks for s in b.spans)
    assert served == list(range(len(spans)))
    for b in blocks:
        assert b.count <= (MAX_BITS if b.table == "COILS" else MAX_REGISTERS)
        for s in b.spans:
            assert s.table == b.table
            assert b.start <= s.address
            assert s.address + s.count <= b.start + b.count
