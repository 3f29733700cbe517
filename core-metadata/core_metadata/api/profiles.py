"""REST: /api/v3/deviceprofile and /api/v3/deviceresource."""

from __future__ import annotations

from typing import Annotated

import anyio.to_thread
from fastapi import APIRouter, Body, File, Request, UploadFile
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
from core_metadata.application.ports import Query
from core_metadata.application.profiles import parse_profile_file
from edgeplane_common.errors import ContractInvalid, LimitExceeded
from edgeplane_common.http import json_response
from edgeplane_common.models import BaseResponse, BaseWithIdResponse, DeviceProfile
from edgeplane_common.models.names import CommandName, ProfileName, ResourceName
from edgeplane_common.models.responses import (
    AddDeviceCommandRequest,
    AddDeviceProfileRequest,
    AddDeviceResourceRequest,
    DeviceProfileBasicInfoRequest,
    DeviceProfileResponse,
    DeviceProfileTagsRequest,
    DeviceResourceResponse,
    MultiDeviceProfileBasicInfosResponse,
    MultiDeviceProfilesResponse,
    UpdateDeviceCommandRequest,
    UpdateDeviceProfileRequest,
    UpdateDeviceResourceRequest,
)
from edgeplane_common.safe_yaml import YamlLimits

router = APIRouter(prefix="/api/v3/deviceprofile", tags=["device profile"], responses=ERRORS)
resource_router = APIRouter(prefix="/api/v3/deviceresource", tags=["device profile"], responses=ERRORS)
UploadField = Annotated[UploadFile, File(description="The device profile as a YAML (or JSON) file")]


@router.post("", status_code=207, response_model=list[BaseWithIdResponse])
async def add_profiles(body: Annotated[list[AddDeviceProfileRequest], Body()], m: M) -> Response:
    async def add(req: AddDeviceProfileRequest) -> tuple[str | None, str | None]:
        return (await m.profiles.add(req.profile)).id, None

    return await add_batch(body, add)


@router.put("", status_code=207, response_model=list[BaseResponse])
async def put_profiles(body: Annotated[list[UpdateDeviceProfileRequest], Body()], m: M) -> Response:
    async def update(req: UpdateDeviceProfileRequest) -> str | None:
        await m.profiles.update(req.profile)
        return None

    return await update_batch(body, update)


async def _profile_from_upload(request: Request, file: UploadFile) -> DeviceProfile:
    limit: int = request.app.state.yaml_limits.max_bytes
    content = await file.read(limit + 1)
    if len(content) > limit:
        raise LimitExceeded(f"the profile file exceeds the maximum of {limit} bytes")
    if not content.strip():
        raise ContractInvalid("the uploaded profile file is empty")
    # Parsing and validating a large profile is CPU work: off the event loop, so ping stays responsive.
    limits: YamlLimits = request.app.state.yaml_limits
    return await anyio.to_thread.run_sync(parse_profile_file, content, limits)


@router.post("/uploadfile", status_code=201, response_model=BaseWithIdResponse)
async def upload_profile(request: Request, file: UploadField, m: M) -> Response:
    profile = await m.profiles.add(await _profile_from_upload(request, file))
    return json_response(BaseWithIdResponse(status_code=201, id=profile.id), 201)


@router.put("/uploadfile", response_model=BaseResponse)
async def replace_profile_file(request: Request, file: UploadField, m: M) -> Response:
    await m.profiles.update(await _profile_from_upload(request, file))
    return ok()


def _page(items: list[DeviceProfile], total: int) -> Response:
    return json_response(MultiDeviceProfilesResponse(profiles=items, total_count=total))


@router.get("/all", response_model=MultiDeviceProfilesResponse)
async def all_profiles(m: M, offset: Offset = 0, limit: Limit = 20, labels: Labels = None) -> Response:
    return _page(*await m.profiles.query(Query(labels=split_labels(labels)), offset, limit))


@router.get("/name/{name}", response_model=DeviceProfileResponse)
async def profile_by_name(name: ProfileName, m: M) -> Response:
    return json_response(DeviceProfileResponse(profile=await m.profiles.get(name)))


@router.delete("/name/{name}", response_model=BaseResponse)
async def delete_profile(name: ProfileName, m: M) -> Response:
    await m.profiles.delete(name)
    return ok()


@router.patch("/name/{name}/tags", response_model=BaseResponse)
async def patch_profile_tags(name: ProfileName, body: DeviceProfileTagsRequest, m: M) -> Response:
    await m.profiles.patch_tags(name, body.device_resources, body.device_commands)
    return ok()


@router.patch("/basicinfo", status_code=207, response_model=list[BaseResponse])
async def patch_basic_info(body: Annotated[list[DeviceProfileBasicInfoRequest], Body()], m: M) -> Response:
    async def update(req: DeviceProfileBasicInfoRequest) -> str | None:
        await m.profiles.patch_basic_info(req.basic_info)
        return None

    return await update_batch(body, update)


@router.get("/basicinfo/all", response_model=MultiDeviceProfileBasicInfosResponse)
async def all_basic_info(m: M, offset: Offset = 0, limit: Limit = 20, labels: Labels = None) -> Response:
    items, total = await m.profiles.basic_infos(split_labels(labels), offset, limit)
    return json_response(MultiDeviceProfileBasicInfosResponse(profiles=items, total_count=total))


@router.post("/deviceCommand", status_code=207, response_model=list[BaseWithIdResponse])
async def add_commands(body: Annotated[list[AddDeviceCommandRequest], Body()], m: M) -> Response:
    async def add(req: AddDeviceCommandRequest) -> tuple[str | None, str | None]:
        await m.profiles.add_command(req.profile_name, req.device_command)
        return None, None

    return await add_batch(body, add)


@router.patch("/deviceCommand", status_code=207, response_model=list[BaseResponse])
async def patch_commands(body: Annotated[list[UpdateDeviceCommandRequest], Body()], m: M) -> Response:
    async def update(req: UpdateDeviceCommandRequest) -> str | None:
        await m.profiles.patch_command(req.profile_name, req.device_command)
        return None

    return await update_batch(body, update)


@router.delete("/name/{name}/deviceCommand/{command_name}", response_model=BaseResponse)
async def delete_command(name: ProfileName, command_name: CommandName, m: M) -> Response:
    await m.profiles.delete_command(name, command_name)
    return ok()


@router.post("/resource", status_code=207, response_model=list[BaseWithIdResponse])
async def add_resources(body: Annotated[list[AddDeviceResourceRequest], Body()], m: M) -> Response:
    async def add(req: AddDeviceResourceRequest) -> tuple[str | None, str | None]:
        await m.profiles.add_resource(req.profile_name, req.resource)
        return None, None

    return await add_batch(body, add)


@router.patch("/resource", status_code=207, response_model=list[BaseResponse])
async def patch_resources(body: Annotated[list[UpdateDeviceResourceRequest], Body()], m: M) -> Response:
    async def update(req: UpdateDeviceResourceRequest) -> str | None:
        await m.profiles.patch_resource(req.profile_name, req.resource)
        return None

    return await update_batch(body, update)


@router.delete("/name/{name}/resource/{resource_name}", response_model=BaseResponse)
async def delete_resource(name: ProfileName, resource_name: ResourceName, m: M) -> Response:
    await m.profiles.delete_resource(name, resource_name)
    return ok()


@router.get("/manufacturer/{manufacturer}", response_model=MultiDeviceProfilesResponse)
async def profiles_by_manufacturer(manufacturer: str, m: M, offset: Offset = 0, limit: Limit = 20) -> Response:
    return _page(*await m.profiles.query(Query(manufacturer=manufacturer), offset, limit))


@router.get("/manufacturer/{manufacturer}/model/{model}", response_model=MultiDeviceProfilesResponse)
async def profiles_by_manufacturer_model(
    manufacturer: str, model: str, m: M, offset: Offset = 0, limit: Limit = 20
) -> Response:
    return _page(*await m.profiles.query(Query(manufacturer=manufacturer, model=model), offset, limit))


@router.get("/model/{model}", response_model=MultiDeviceProfilesResponse)
async def profiles_by_model(model: str, m: M, offset: Offset = 0, limit: Limit = 20) -> Response:
    return _page(*await m.profiles.query(Query(model=model), offset, limit))


@resource_router.get("/profile/{profile_name}/resource/{resource_name}", response_model=DeviceResourceResponse)
async def resource_by_name(profile_name: ProfileName, resource_name: ResourceName, m: M) -> Response:
    return json_response(DeviceResourceResponse(resource=await m.profiles.get_resource(profile_name, resource_name)))
