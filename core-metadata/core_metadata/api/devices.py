"""REST: /api/v3/device."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body
from fastapi import Query as Q
from starlette.responses import Response

from core_metadata.api.common import (
    Labels,
    Limit,
    Offset,
    non_empty,
    ok,
    split_labels,
    update_batch,
)
from core_metadata.api.deps import ERRORS, M
from core_metadata.application.ports import Query
from edgeplane_common.errors import EdgeError, NotFound
from edgeplane_common.http import json_response
from edgeplane_common.models import BaseResponse, BaseWithIdResponse, Device
from edgeplane_common.models.names import DeviceName, ProfileName, ServiceName
from edgeplane_common.models.responses import (
    AddDeviceRequest,
    DeviceResponse,
    MultiDevicesResponse,
    UpdateDeviceRequest,
)

router = APIRouter(prefix="/api/v3/device", tags=["device"], responses=ERRORS)
Bypass = Annotated[bool, Q(alias="bypassValidation", description="Skip the device service's validation")]


@router.post("", status_code=207, response_model=list[BaseWithIdResponse])
async def add_devices(
    body: Annotated[list[AddDeviceRequest], Body()],
    m: M,
    force: Annotated[bool, Q(description="Replace a device whose name already exists")] = False,
    bypass_validation: Bypass = False,
) -> Response:
    non_empty(body)
    outcomes = await m.devices.add_many([req.device for req in body], force=force, bypass_validation=bypass_validation)
    results: list[BaseResponse] = []
    for req, outcome in zip(body, outcomes, strict=True):
        if isinstance(outcome, EdgeError):
            results.append(
                BaseResponse(request_id=req.request_id, status_code=outcome.status_code, message=outcome.message)
            )
        else:
            device, note = outcome
            results.append(BaseWithIdResponse(request_id=req.request_id, status_code=201, id=device.id, message=note))
    return json_response(results, 207)


@router.patch("", status_code=207, response_model=list[BaseResponse])
async def patch_devices(
    body: Annotated[list[UpdateDeviceRequest], Body()], m: M, bypass_validation: Bypass = False
) -> Response:
    async def update(req: UpdateDeviceRequest) -> str | None:
        return (await m.devices.patch(req.device, bypass_validation=bypass_validation))[1]

    return await update_batch(body, update)


def _page(items: list[Device], total: int) -> Response:
    return json_response(MultiDevicesResponse(devices=items, total_count=total))


@router.get("/all", response_model=MultiDevicesResponse)
async def all_devices(
    m: M,
    offset: Offset = 0,
    limit: Limit = 20,
    labels: Labels = None,
    descendants_of: Annotated[str | None, Q(alias="descendantsOf")] = None,
    max_levels: Annotated[int, Q(alias="maxLevels", ge=0)] = 0,
) -> Response:
    if descendants_of:
        return _page(*await m.devices.descendants(descendants_of, split_labels(labels), max_levels, offset, limit))
    return _page(*await m.devices.query(Query(labels=split_labels(labels)), offset, limit))


@router.get("/check/name/{name}", response_model=BaseResponse)
async def check_device_name(name: DeviceName, m: M) -> Response:
    if not await m.devices.exists(name):
        raise NotFound(f"device {name!r} does not exist")
    return ok()


@router.get("/name/{name}", response_model=DeviceResponse)
async def device_by_name(name: DeviceName, m: M) -> Response:
    return json_response(DeviceResponse(device=await m.devices.get(name)))


@router.delete("/name/{name}", response_model=BaseResponse)
async def delete_device(name: DeviceName, m: M) -> Response:
    await m.devices.delete(name)
    return ok()


@router.get("/id/{id}", response_model=DeviceResponse)
async def device_by_id(id: str, m: M) -> Response:
    return json_response(DeviceResponse(device=await m.devices.get_by_id(id)))


@router.get("/profile/name/{name}", response_model=MultiDevicesResponse)
async def devices_by_profile(name: ProfileName, m: M, offset: Offset = 0, limit: Limit = 20) -> Response:
    return _page(*await m.devices.query(Query(profile_name=name), offset, limit))


@router.get("/service/name/{name}", response_model=MultiDevicesResponse)
async def devices_by_service(name: ServiceName, m: M, offset: Offset = 0, limit: Limit = 20) -> Response:
    return _page(*await m.devices.query(Query(service_name=name), offset, limit))
