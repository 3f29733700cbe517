"""Helpers every core-metadata router shares: managers, batch results, paging params."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Query
from pydantic import ValidationError
from starlette.responses import Response

from core_metadata.application.devices import DeviceManager
from core_metadata.application.profiles import ProfileManager
from core_metadata.application.services import DeviceServiceManager
from core_metadata.application.watchers import ProvisionWatcherManager
from edgeplane_common.errors import ContractInvalid, EdgeError
from edgeplane_common.http import json_response
from edgeplane_common.models import BaseResponse, BaseWithIdResponse, describe_errors
from edgeplane_common.models.base import BaseRequest

T = TypeVar("T", bound=BaseRequest)


@dataclass(frozen=True)
class Managers:
    devices: DeviceManager
    profiles: ProfileManager
    services: DeviceServiceManager
    watchers: ProvisionWatcherManager


Offset = Annotated[int, Query(ge=0, description="Items to skip")]
Limit = Annotated[int, Query(ge=-1, description="Items to return; -1 = all up to MaxResultCount")]
Labels = Annotated[str | None, Query(description="Comma-separated labels; an item must carry all of them")]


def split_labels(labels: str | None) -> list[str]:
    return [label.strip() for label in labels.split(",") if label.strip()] if labels else []


async def add_batch(items: Sequence[T], add: Callable[[T], Awaitable[tuple[str | None, str | None]]]) -> Response:
    """Run `add` per element: 207 with one BaseWithIdResponse per element, in order."""
    non_empty(items)
    results: list[BaseResponse] = []
    for item in items:
        try:
            entity_id, note = await add(item)
            results.append(BaseWithIdResponse(request_id=item.request_id, status_code=201, id=entity_id, message=note))
        except EdgeError as err:
            results.append(BaseResponse(request_id=item.request_id, status_code=err.status_code, message=err.message))
        except ValidationError as err:  # a use case should have said ContractInvalid; bad input is never a 500
            results.append(BaseResponse(request_id=item.request_id, status_code=400, message=describe_errors(err)))
    return json_response(results, 207)


async def update_batch(items: Sequence[T], update: Callable[[T], Awaitable[str | None]]) -> Response:
    """Run `update` per element: 207 with one BaseResponse per element, in order."""
    non_empty(items)
    results: list[BaseResponse] = []
    for item in items:
        try:
            note = await update(item)
            results.append(BaseResponse(request_id=item.request_id, status_code=200, message=note))
        except EdgeError as err:
            results.append(BaseResponse(request_id=item.request_id, status_code=err.status_code, message=err.message))
        except ValidationError as err:  # a use case should have said ContractInvalid; bad input is never a 500
            results.append(BaseResponse(request_id=item.request_id, status_code=400, message=describe_errors(err)))
    return json_response(results, 207)


def non_empty(items: Sequence[Any]) -> None:
    if not items:
        raise ContractInvalid("the request body is an empty array; send at least one element")


def ok(status: int = 200, message: str | None = None) -> Response:
    return json_response(BaseResponse(status_code=status, message=message), status)
