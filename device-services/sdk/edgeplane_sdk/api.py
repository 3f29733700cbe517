"""The EdgeX device-service REST API (device-sdk.yaml): commands per device, discovery."""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from starlette.responses import Response

from edgeplane_common.errors import NotFound
from edgeplane_common.http import json_response
from edgeplane_common.models import BaseResponse
from edgeplane_sdk.runtime import DeviceServiceRuntime, flag

log = logging.getLogger(__name__)
router = APIRouter(prefix="/api/v3", tags=["device service"])


def runtime(request: Request) -> DeviceServiceRuntime:
    rt: DeviceServiceRuntime = request.app.state.runtime
    return rt


@router.get("/device/name/{name}/{command}")
async def get_command(
    request: Request,
    name: str,
    command: str,
    push: Annotated[str | None, Query(alias="ds-pushevent")] = None,
    ret: Annotated[str | None, Query(alias="ds-returnevent")] = None,
) -> Response:
    event = await runtime(request).read_command(name, command, push=flag(push, False))
    body: dict[str, Any] = {"apiVersion": "v3", "statusCode": 200}
    if flag(ret, True):
        body["event"] = event.to_json_dict()
    return json_response(body)


@router.put("/device/name/{name}/{command}")
async def put_command(
    request: Request, name: str, command: str, settings: Annotated[dict[str, Any], Body()]
) -> Response:
    await runtime(request).executor.write(name, command, settings)
    return json_response(BaseResponse())


@router.post("/discovery", status_code=202)
async def discovery(request: Request) -> Response:
    rt = runtime(request)
    request_id = str(uuid.uuid4())
    tasks: dict[str, asyncio.Task[Any]] = request.app.state.discoveries
    task = tasks[request_id] = asyncio.create_task(rt.discover(), name=f"discovery {request_id}")
    task.add_done_callback(lambda t: _discovery_done(tasks, request_id, t))
    return json_response({"apiVersion": "v3", "statusCode": 202, "requestId": request_id}, 202)


def _discovery_done(tasks: dict[str, asyncio.Task[Any]], request_id: str, task: asyncio.Task[Any]) -> None:
    if tasks.get(request_id) is task:
        del tasks[request_id]
    if not task.cancelled() and task.exception() is not None:
        log.warning("discovery %s failed: %s", request_id, task.exception())


@router.delete("/discovery")
async def cancel_discoveries(request: Request) -> Response:
    tasks: dict[str, asyncio.Task[Any]] = request.app.state.discoveries
    for task in tasks.values():
        task.cancel()
    tasks.clear()
    return json_response(BaseResponse())


@router.delete("/discovery/requestId/{request_id}")
async def cancel_discovery(request: Request, request_id: str) -> Response:
    tasks: dict[str, asyncio.Task[Any]] = request.app.state.discoveries
    task = tasks.pop(request_id, None)
    if task is None:
        raise NotFound(f"no discovery with request id {request_id!r} is running")
    task.cancel()
    return json_response(BaseResponse())
