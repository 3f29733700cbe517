"""Coalescing: the resources of one device that lie in the same table are read in as few requests as the
protocol allows (≤125 registers, ≤2000 bits per request), bridging small gaps between them."""

from __future__ import annotations

from dataclasses import dataclass, field

MAX_REGISTERS = 125
MAX_BITS = 2000
BIT_TABLES = frozenset({"COILS", "DISCRETE_INPUTS"})


@dataclass(frozen=True, slots=True)
class Span:
    """Where one requested resource lives: `count` registers (or bits) from `address` in `table`."""

    index: int
    table: str
    address: int
    count: int


@dataclass(slots=True)
class Block:
    """One Modbus read request and the spans it serves."""

    table: str
    start: int
    count: int
    spans: list[Span] = field(default_factory=list)


def plan(
    spans: list[Span], *, max_gap: int = 16, max_registers: int = MAX_REGISTERS, max_bits: int = MAX_BITS
) -> list[Block]:
    """Group spans into blocks. A gap of up to `max_gap` unused registers is read rather than split,
    because one more request costs far more than a few extra words on the wire."""
    blocks: list[Block] = []
    by_table: dict[str, list[Span]] = {}
    for span in spans:
        by_table.setdefault(span.table, []).append(span)
    for table, items in by_table.items():
        limit = max_bits if table in BIT_TABLES else max_registers
        gap = max_gap * 16 if table in BIT_TABLES else max_gap
        current: Block | None = None
        for span in sorted(items, key=lambda s: (s.address, s.count)):
            end = span.address + span.count
            if current is not None:
                cur_end = current.start + current.count
                if span.address - cur_end <= gap and max(end, cur_end) - current.start <= limit:
                    current.count = max(end, cur_end) - current.start
                    current.spans.append(span)
                    continue
            current = Block(table, span.address, span.count, [span])
            blocks.append(current)
    return blocks
