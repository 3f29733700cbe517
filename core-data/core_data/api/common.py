"""What every core-data router shares: the use cases, query parameters, response shapes (the dependency
aliases are in `deps`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Query
from pydantic import Field

from core_data.application.events import EventManager
from core_data.application.readings import ReadingManager
from core_data.application.values import query_flag
from edgeplane_common import API_VERSION
from edgeplane_common.models import BaseResponse, BaseWithTotalCountResponse, Event, Reading


@dataclass(frozen=True)
class Managers:
    events: EventManager
    readings: ReadingManager


Offset = Annotated[
    int, Query(ge=-1, description="Items to skip; -1 starts at the first without counting the total (totalCount 0)")
]
Limit = Annotated[int, Query(ge=-1, description="Items to return; -1 = all up to MaxResultCount")]
NumericText = Annotated[
    str | None, Query(alias="numeric", description="true: numeric reading values as JSON numbers, not strings")
]
AggregateText = Annotated[
    str | None,
    Query(alias="aggregateFunc", description="MIN, MAX, COUNT, SUM or AVG (any casing): one reading per group"),
]


def numeric_flag(text: str | None) -> bool:
    return query_flag("numeric", text)


def ok(status: int = 200) -> dict[str, Any]:
    return {"apiVersion": API_VERSION, "statusCode": status}


# Response models: for the OpenAPI document only (routes build plain dicts, orjson-encoded).
class CountResponse(BaseResponse):
    count: int


class EventResponse(BaseResponse):
    event: Event


class MultiEventsResponse(BaseWithTotalCountResponse):
    events: list[Event]


class MultiReadingsResponse(BaseWithTotalCountResponse):
    aggregate_func: str | None = Field(
        None, description="The aggregate function applied, when one was asked, spelled as in the request"
    )
    readings: list[Reading]
