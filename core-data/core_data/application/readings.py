"""Readings: queries by device, resource(s) and time range, counts, and the aggregate functions."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core_data.application.pagination import check_range, check_time_range, page_of
from core_data.application.ports import EventStore, ReadingQuery
from core_data.application.values import AggregateFunc, aggregate_reading, with_numeric_value


class ReadingManager:
    def __init__(self, store: EventStore, *, max_result_count: int = 1024) -> None:
        self.store = store
        self.max_result_count = max_result_count

    async def page(
        self,
        *,
        device: str | None = None,
        resources: Sequence[str] = (),
        start: int | None = None,
        end: int | None = None,
        offset: int = 0,
        limit: int = 20,
        numeric: bool = False,
    ) -> tuple[list[dict[str, Any]], int]:
        """Readings newest first, paged as EdgeX; and the total (0 if not counted)."""
        if start is not None and end is not None:
            check_time_range(start, end)
        page = page_of(offset, limit, self.max_result_count)
        query = ReadingQuery(
            device=device, resources=tuple(resources), start=start, end=end, offset=page.offset, limit=page.limit
        )
        total = 0
        if page.count_total:
            total = await self.store.count_readings(query)
            check_range(page.offset, total)
            if page.offset >= total:
                return [], total
        readings = await self.store.readings(query)
        if numeric:
            readings = [with_numeric_value(r) for r in readings]
        return readings, total

    async def aggregate(
        self,
        func: AggregateFunc,
        *,
        device: str | None = None,
        resources: Sequence[str] = (),
        start: int | None = None,
        end: int | None = None,
        offset: int = 0,
        limit: int = 20,
    ) -> tuple[list[dict[str, Any]], int]:
        """One aggregated reading per (device, resource, profile, valueType) group, ordered by device name,
        the groups paged as EdgeX pages rows; and the number of groups."""
        if start is not None and end is not None:
            check_time_range(start, end)
        page = page_of(offset, limit, self.max_result_count)
        query = ReadingQuery(device=device, resources=tuple(resources), start=start, end=end)
        groups = await self.store.aggregate(query)
        total = len(groups)
        if page.count_total:
            check_range(page.offset, total)
        chosen = groups[page.offset : page.offset + page.limit]
        return [aggregate_reading(g, func) for g in chosen], total if page.count_total else 0

    async def count(self, *, device: str | None = None) -> int:
        return await self.store.count_readings(ReadingQuery(device=device))
