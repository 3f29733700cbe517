"""REST: /api/v3/device (core-command.yaml v4.0.2)."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from starlette.responses import Response

from core_command.api.common import Limit, Offset
from core_command.api.deps import M
from core_command.application.models import (
    DeviceCoreCommandResponse,
    EventResponse,
    MultiDeviceCoreCommandsResponse,
)
from edgeplane_common.auth.roles import Role, requires
from edgeplane_common.errors import ContractInvalid
from edgeplane_common.http import error_responses, json_response
from edgeplane_common.models import BaseResponse
from edgeplane_common.models.names import AnyName

router = APIRouter(prefix="/api/v3/device", tags=["command"])
COMMAND_ERRORS = error_responses(400, 404, 405, 423, 502, 503)

_SETTINGS_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "title": "Settings",
                    "description": "Resource names to the values to write; each value is checked against the "
                    "device profile (valueType, minimum, maximum, readWrite) before it is sent.",
                    "additionalProperties": True,
                    "example": {"SpeedSetpoint": "1450", "TempSetpoint": "55.5"},
                }
            }
        },
    }
}


@router.get("/all", response_model=MultiDeviceCoreCommandsResponse, responses=error_responses(400, 416, 503))
async def all_device_commands(m: M, offset: Offset = 0, limit: Limit = 20) -> Response:
    commands, total = await m.all_commands(offset, limit)
    return json_response(MultiDeviceCoreCommandsResponse(device_core_commands=commands, total_count=total))


@router.get("/name/{name}", response_model=DeviceCoreCommandResponse, responses=error_responses(404, 503))
async def device_commands(name: AnyName, m: M) -> Response:
    return json_response(DeviceCoreCommandResponse(device_core_command=await m.device_commands(name)))


# A read command reaches the device too: operators, not viewers (secure mode).
@router.get(
    "/name/{name}/{command}",
    response_model=EventResponse,
    responses=COMMAND_ERRORS,
    openapi_extra=requires(Role.OPERATOR),
)
async def issue_get_command(
    request: Request,
    name: AnyName,
    command: AnyName,
    m: M,
    push_event: Annotated[
        str | None,
        Query(alias="ds-pushevent", description="true: the device service also publishes the event on the bus"),
    ] = None,
    return_event: Annotated[
        str | None, Query(alias="ds-returnevent", description="false: the response carries no event")
    ] = None,
    json_object: Annotated[
        str | None,
        Query(alias="jsonObject", description="Base64-encoded JSON of further parameters, relayed as it is"),
    ] = None,
) -> Response:
    # Every query parameter is relayed to the device service as it came (EdgeX passes the raw query on).
    body = await m.read(name, command, dict(request.query_params))
    body.setdefault("apiVersion", "v3")
    body.setdefault("statusCode", 200)
    return json_response(body)


@router.put(
    "/name/{name}/{command}",
    response_model=BaseResponse,
    responses=COMMAND_ERRORS,
    openapi_extra={**_SETTINGS_BODY, **requires(Role.OPERATOR)},
)
async def issue_set_command(request: Request, name: AnyName, command: AnyName, m: M) -> Response:
    raw = await request.body()
    if not raw.strip():
        raise ContractInvalid(
            'the request body is empty; send a JSON object of resource names to values, e.g. {"Mode": "2"}'
        )
    try:
        settings = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ContractInvalid(f"request body is not valid JSON ({err})") from None
    await m.write(name, command, settings, dict(request.query_params))
    return json_response(BaseResponse())
