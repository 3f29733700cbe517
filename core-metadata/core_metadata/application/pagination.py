"""EdgeX paging rules: offset ≥ 0, limit -1 means "all up to MaxResultCount"."""

from __future__ import annotations

from edgeplane_common.errors import ContractInvalid, RangeNotSatisfiable


def page_limit(offset: int, limit: int, max_result_count: int) -> int:
    if offset < 0:
        raise ContractInvalid(f"offset must be 0 or more, got {offset}")
    if limit < -1:
        raise ContractInvalid(f"limit must be -1 (all) or more, got {limit}")
    if limit == -1 or limit > max_result_count:
        return max_result_count
    return limit


def check_range(offset: int, total: int) -> None:
    if offset > 0 and offset >= total:
        raise RangeNotSatisfiable(f"offset {offset} is beyond the {total} matching items")
