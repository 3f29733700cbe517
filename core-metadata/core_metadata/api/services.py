"""REST: /api/v3/deviceservice."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from starlette.responses import Response

from core_metadata.api.common import (
    Labels,
    Limit,
    Offset,
    add_batch,
    ok,
    split_labels,
    update_batch,
)
from core_metadata.api.deps import ERRORS, M
from edgeplane_common.http import json_response
from edgeplane_common.models import BaseResponse, BaseWithIdResponse
from edgeplane_common.models.names import ServiceName
from edgeplane_common.models.responses import (
    AddDeviceServiceRequest,
    DeviceServiceResponse,
    MultiDeviceServicesResponse,
    UpdateDeviceServiceRequest,
)

router = APIRouter(prefix="/api/v3/deviceservice", tags=["device service"], responses=ERRORS)


@router.post("", status_code=207, response_model=list[BaseWithIdResponse])
async def add_services(body: Annotated[list[AddDeviceServiceRequest], Body()], m: M) -> Response:
    async def add(req: AddDeviceServiceRequest) -> tuple[str | None, str | None]:
        return (await m.services.add(req.service)).id, None

    return await add_batch(body, add)


@router.patch("", status_code=207, response_model=list[BaseResponse])
async def patch_services(body: Annotated[list[UpdateDeviceServiceRequest], Body()], m: M) -> Response:
    async def update(req: UpdateDeviceServiceRequest) -> str | None:
        await m.services.patch(req.service)
        return None

    return await update_batch(body, update)


@router.get("/all", response_model=MultiDeviceServicesResponse)
async def all_services(m: M, offset: Offset = 0, limit: Limit = 20, labels: Labels = None) -> Response:
    items, total = await m.services.all(split_labels(labels), offset, limit)
    return json_response(MultiDeviceServicesResponse(services=items, total_count=total))


@router.get("/name/{name}", response_model=DeviceServiceResponse)
async def service_by_name(name: ServiceName, m: M) -> Response:
    return json_response(DeviceServiceResponse(service=await m.services.get(name)))


@router.delete("/name/{name}", response_model=BaseResponse)
async def delete_service(name: ServiceName, m: M) -> Response:
    await m.services.delete(name)
    return ok()
