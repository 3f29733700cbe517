"""EdgeX paging: offset ≥ -1 (-1: from the start, without counting the total), -1 ≤ limit ≤ MaxResultCount
(-1 = MaxResultCount; more is a 400, as in EdgeX)."""

from __future__ import annotations

from dataclasses import dataclass

from edgeplane_common.errors import ContractInvalid, RangeNotSatisfiable


@dataclass(frozen=True, slots=True)
class Page:
    offset: int
    limit: int
    count_total: bool
    """False when the caller asked not to count (offset=-1): totalCount is then 0 and no 416 is possible."""


def page_of(offset: int, limit: int, max_result_count: int) -> Page:
    if offset < -1:
        raise ContractInvalid(f"offset must be -1 (skip counting) or more, got {offset}")
    if limit < -1 or limit > max_result_count:
        raise ContractInvalid(
            f"limit {limit} is out of range: -1 (all, up to {max_result_count}) to {max_result_count}"
        )
    if limit == -1:
        limit = max_result_count
    return Page(offset=max(offset, 0), limit=limit, count_total=offset != -1)


def check_range(offset: int, total: int) -> None:
    """EdgeX answers 416 when the offset is at or past the end of a non-empty result."""
    if offset > 0 and offset >= total:
        raise RangeNotSatisfiable(f"offset {offset} is beyond the {total} matching items")


def check_time_range(start: int, end: int) -> None:
    if end < start:
        raise ContractInvalid(f"end {end} is before start {start}: the range is start ≤ origin ≤ end (nanoseconds)")
