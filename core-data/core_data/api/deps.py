"""What core-data's routers take from FastAPI, each written once: dependency aliases and error docs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from core_data.api.common import AggregateText, Limit, Managers, NumericText, Offset
from edgeplane_common.http import error_responses

ERRORS: dict[int | str, dict[str, Any]] = error_responses(400, 404, 409, 413, 415, 416, 503)
"""The error statuses core-data's routes answer with."""


def managers(request: Request) -> Managers:
    m: Managers = request.app.state.managers
    return m


M = Annotated[Managers, Depends(managers)]


@dataclass(frozen=True, slots=True)
class Listing:
    """The query parameters every readings listing takes."""

    offset: int
    limit: int
    numeric: str | None
    aggregate: str | None


def listing(
    offset: Offset = 0, limit: Limit = 20, numeric: NumericText = None, aggregate: AggregateText = None
) -> Listing:
    return Listing(offset, limit, numeric, aggregate)


L = Annotated[Listing, Depends(listing)]
