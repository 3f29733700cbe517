"""REST: /api/v3/event."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from core_data.api.common import (
    CountResponse,
    EventResponse,
    Limit,
    MultiEventsResponse,
    NumericText,
    Offset,
    numeric_flag,
    ok,
)
from core_data.api.deps import ERRORS, M
from edgeplane_common import API_VERSION
from edgeplane_common.errors import ContractInvalid, LimitExceeded, UnsupportedMediaType
from edgeplane_common.http import json_response
from edgeplane_common.models import BaseResponse, BaseWithIdResponse
from edgeplane_common.models.names import AnyName

router = APIRouter(prefix="/api/v3/event", tags=["event"], responses=ERRORS)

_ADD_EVENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "AddEventRequest: the event's profileName, deviceName and sourceName must match "
                    "the path.",
                    "required": ["event"],
                    "properties": {
                        "apiVersion": {"type": "string", "example": "v3"},
                        "requestId": {"type": "string", "format": "uuid"},
                        "event": {"$ref": "#/components/schemas/Event"},
                    },
                }
            }
        },
    }
}


def _events_page(events: list[dict[str, Any]], total: int) -> Response:
    return json_response({**ok(), "totalCount": total, "events": events})


def _count(n: int) -> Response:
    return json_response({**ok(), "count": n})


@router.post(
    "/{serviceName}/{profileName}/{deviceName}/{sourceName}",
    status_code=201,
    response_model=BaseWithIdResponse,
    openapi_extra=_ADD_EVENT_BODY,
)
async def add_event(
    request: Request,
    m: M,
    service_name: Annotated[AnyName, Path(alias="serviceName")],
    profile_name: Annotated[AnyName, Path(alias="profileName")],
    device_name: Annotated[AnyName, Path(alias="deviceName")],
    source_name: Annotated[AnyName, Path(alias="sourceName")],
) -> Response:
    limit = request.app.state.max_event_bytes
    length = request.headers.get("content-length")
    if limit and length is not None and length.isdigit() and int(length) > limit:
        raise LimitExceeded(f"event of {length} bytes exceeds MaxEventSize ({limit // 1024} KB)")
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype != "application/json" and not ctype.endswith("+json"):
        raise UnsupportedMediaType(f"events are accepted as application/json, not {ctype!r}")
    body = await request.body()
    if limit and len(body) > limit:
        raise LimitExceeded(f"event of {len(body)} bytes exceeds MaxEventSize ({limit // 1024} KB)")
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise ContractInvalid(f"request body is not valid JSON ({err})") from None
    event_id, request_id = await m.events.add(
        data, service=service_name, profile=profile_name, device=device_name, source=source_name
    )
    return json_response(
        {"apiVersion": API_VERSION, "requestId": request_id, "statusCode": 201, "id": event_id}
        if request_id
        else {"apiVersion": API_VERSION, "statusCode": 201, "id": event_id},
        201,
    )


@router.get("/all", response_model=MultiEventsResponse)
async def all_events(m: M, offset: Offset = 0, limit: Limit = 20, numeric: NumericText = None) -> Response:
    return _events_page(*await m.events.page(offset=offset, limit=limit, numeric=numeric_flag(numeric)))


@router.get("/count", response_model=CountResponse)
async def event_count(m: M) -> Response:
    return _count(await m.events.count())


@router.get("/count/device/name/{name}", response_model=CountResponse)
async def event_count_by_device(name: AnyName, m: M) -> Response:
    return _count(await m.events.count(device=name))


@router.get("/device/name/{name}", response_model=MultiEventsResponse)
async def events_by_device(
    name: AnyName, m: M, offset: Offset = 0, limit: Limit = 20, numeric: NumericText = None
) -> Response:
    return _events_page(*await m.events.page(device=name, offset=offset, limit=limit, numeric=numeric_flag(numeric)))


@router.delete("/device/name/{name}", status_code=202, response_model=BaseResponse)
async def delete_events_by_device(name: AnyName, m: M) -> Response:
    m.events.delete_by_device(name)
    return json_response(ok(202), 202)


@router.get("/start/{start}/end/{end}", response_model=MultiEventsResponse)
async def events_by_time_range(
    start: int, end: int, m: M, offset: Offset = 0, limit: Limit = 20, numeric: NumericText = None
) -> Response:
    return _events_page(
        *await m.events.page(start=start, end=end, offset=offset, limit=limit, numeric=numeric_flag(numeric))
    )


@router.delete("/age/{age}", status_code=202, response_model=BaseResponse)
async def delete_events_by_age(age: int, m: M) -> Response:
    m.events.delete_by_age(age)
    return json_response(ok(202), 202)


@router.get("/id/{id}", response_model=EventResponse)
async def event_by_id(id: str, m: M, numeric: NumericText = None) -> Response:
    return json_response({**ok(), "event": await m.events.get(id, numeric=numeric_flag(numeric))})


@router.delete("/id/{id}", response_model=BaseResponse)
async def delete_event(id: str, m: M) -> Response:
    await m.events.delete(id)
    return json_response(ok())
