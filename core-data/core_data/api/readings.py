"""REST: /api/v3/reading."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import orjson
from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from core_data.api.common import CountResponse, Managers, MultiReadingsResponse, numeric_flag, ok
from core_data.api.deps import ERRORS, L, Listing, M
from core_data.application.values import AggregateFunc
from edgeplane_common.errors import ContractInvalid
from edgeplane_common.http import json_response
from edgeplane_common.models.names import AnyName

router = APIRouter(prefix="/api/v3/reading", tags=["reading"], responses=ERRORS)

DeviceName = Annotated[AnyName, Path(alias="deviceName")]
ResourceName = Annotated[AnyName, Path(alias="resourceName")]

_RESOURCE_NAMES_BODY = {
    "requestBody": {
        "required": False,
        "description": "Optional: the resources to return readings of (all of the device's when absent or empty)",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {"resourceNames": {"type": "array", "items": {"type": "string"}}},
                }
            }
        },
    }
}


async def _readings(
    m: Managers,
    q: Listing,
    *,
    device: str | None = None,
    resources: Sequence[str] = (),
    start: int | None = None,
    end: int | None = None,
) -> Response:
    if q.aggregate:
        func = AggregateFunc.parse(q.aggregate)
        rows, total = await m.readings.aggregate(
            func, device=device, resources=resources, start=start, end=end, offset=q.offset, limit=q.limit
        )
        # Echoed as the client spelled it (EdgeX does; clients compare it with what they sent).
        return json_response({**ok(), "aggregateFunc": q.aggregate, "totalCount": total, "readings": rows})
    readings, total = await m.readings.page(
        device=device,
        resources=resources,
        start=start,
        end=end,
        offset=q.offset,
        limit=q.limit,
        numeric=numeric_flag(q.numeric),
    )
    return json_response({**ok(), "totalCount": total, "readings": readings})


def _count(n: int) -> Response:
    return json_response({**ok(), "count": n})


@router.get("/all", response_model=MultiReadingsResponse)
async def all_readings(m: M, q: L) -> Response:
    return await _readings(m, q)


@router.get("/count", response_model=CountResponse)
async def reading_count(m: M) -> Response:
    return _count(await m.readings.count())


@router.get("/count/device/name/{name}", response_model=CountResponse)
async def reading_count_by_device(name: AnyName, m: M) -> Response:
    return _count(await m.readings.count(device=name))


@router.get("/device/name/{name}", response_model=MultiReadingsResponse)
async def readings_by_device(name: AnyName, m: M, q: L) -> Response:
    return await _readings(m, q, device=name)


@router.get("/resourceName/{resourceName}", response_model=MultiReadingsResponse)
async def readings_by_resource(resource: ResourceName, m: M, q: L) -> Response:
    return await _readings(m, q, resources=(resource,))


@router.get("/device/name/{deviceName}/resourceName/{resourceName}", response_model=MultiReadingsResponse)
async def readings_by_device_and_resource(device: DeviceName, resource: ResourceName, m: M, q: L) -> Response:
    return await _readings(m, q, device=device, resources=(resource,))


@router.get("/start/{start}/end/{end}", response_model=MultiReadingsResponse)
async def readings_by_time_range(start: int, end: int, m: M, q: L) -> Response:
    return await _readings(m, q, start=start, end=end)


@router.get("/resourceName/{resourceName}/start/{start}/end/{end}", response_model=MultiReadingsResponse)
async def readings_by_resource_and_time_range(resource: ResourceName, start: int, end: int, m: M, q: L) -> Response:
    return await _readings(m, q, resources=(resource,), start=start, end=end)


@router.get(
    "/device/name/{deviceName}/resourceName/{resourceName}/start/{start}/end/{end}",
    response_model=MultiReadingsResponse,
)
async def readings_by_device_resource_and_time_range(
    device: DeviceName, resource: ResourceName, start: int, end: int, m: M, q: L
) -> Response:
    return await _readings(m, q, device=device, resources=(resource,), start=start, end=end)


async def resource_names(request: Request) -> list[str]:
    """The optional `{"resourceNames": [...]}` body of the multiple-resources query (a GET with a body, as
    EdgeX defines it)."""
    body = await request.body()
    if not body.strip():
        return []
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise ContractInvalid(f"request body is not valid JSON ({err})") from None
    if not isinstance(data, dict):
        raise ContractInvalid('the request body must be an object: {"resourceNames": ["r1", "r2"]}')
    names = next((v for k, v in data.items() if isinstance(k, str) and k.lower() == "resourcenames"), None)
    if names is None:
        return []
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ContractInvalid("resourceNames must be an array of non-empty strings")
    return names


@router.get(
    "/device/name/{deviceName}/start/{start}/end/{end}",
    response_model=MultiReadingsResponse,
    openapi_extra=_RESOURCE_NAMES_BODY,
)
async def readings_by_device_and_time_range(
    request: Request, device: DeviceName, start: int, end: int, m: M, q: L
) -> Response:
    return await _readings(m, q, device=device, resources=await resource_names(request), start=start, end=end)
