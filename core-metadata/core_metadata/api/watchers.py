"""REST: /api/v3/provisionwatcher."""

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
from core_metadata.application.ports import Query
from edgeplane_common.http import json_response
from edgeplane_common.models import BaseResponse, BaseWithIdResponse
from edgeplane_common.models.names import ProfileName, ServiceName, WatcherName
from edgeplane_common.models.responses import (
    AddProvisionWatcherRequest,
    MultiProvisionWatchersResponse,
    ProvisionWatcherResponse,
    UpdateProvisionWatcherRequest,
)

router = APIRouter(prefix="/api/v3/provisionwatcher", tags=["provision watcher"], responses=ERRORS)


@router.post("", status_code=207, response_model=list[BaseWithIdResponse])
async def add_watchers(body: Annotated[list[AddProvisionWatcherRequest], Body()], m: M) -> Response:
    async def add(req: AddProvisionWatcherRequest) -> tuple[str | None, str | None]:
        return (await m.watchers.add(req.provision_watcher)).id, None

    return await add_batch(body, add)


@router.patch("", status_code=207, response_model=list[BaseResponse])
async def patch_watchers(body: Annotated[list[UpdateProvisionWatcherRequest], Body()], m: M) -> Response:
    async def update(req: UpdateProvisionWatcherRequest) -> str | None:
        await m.watchers.patch(req.provision_watcher)
        return None

    return await update_batch(body, update)


def _page(items: list, total: int) -> Response:  # type: ignore[type-arg]
    return json_response(MultiProvisionWatchersResponse(provision_watchers=items, total_count=total))


@router.get("/all", response_model=MultiProvisionWatchersResponse)
async def all_watchers(m: M, offset: Offset = 0, limit: Limit = 20, labels: Labels = None) -> Response:
    return _page(*await m.watchers.query(Query(labels=split_labels(labels)), offset, limit))


@router.get("/name/{name}", response_model=ProvisionWatcherResponse)
async def watcher_by_name(name: WatcherName, m: M) -> Response:
    return json_response(ProvisionWatcherResponse(provision_watcher=await m.watchers.get(name)))


@router.delete("/name/{name}", response_model=BaseResponse)
async def delete_watcher(name: WatcherName, m: M) -> Response:
    await m.watchers.delete(name)
    return ok()


@router.get("/service/name/{name}", response_model=MultiProvisionWatchersResponse)
async def watchers_by_service(name: ServiceName, m: M, offset: Offset = 0, limit: Limit = 20) -> Response:
    return _page(*await m.watchers.query(Query(service_name=name), offset, limit))


@router.get("/profile/name/{name}", response_model=MultiProvisionWatchersResponse)
async def watchers_by_profile(name: ProfileName, m: M, offset: Offset = 0, limit: Limit = 20) -> Response:
    return _page(*await m.watchers.query(Query(profile_name=name), offset, limit))
