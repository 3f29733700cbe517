"""REST: /api/v3/rule (eKuiper's rule management, in EdgeX's response shapes)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from edgeplane_common.auth.roles import Role, requires
from edgeplane_common.errors import ContractInvalid
from edgeplane_common.http import error_responses, json_response
from edgeplane_common.models import BaseResponse
from edgeplane_common.models.base import BaseWithIdResponse
from rules_engine.api.deps import M
from rules_engine.application.rules import parse_rule

router = APIRouter(prefix="/api/v3/rule", tags=["rule"])

_RULE_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"type": "object", "title": "Rule", "additionalProperties": True},
                "example": {
                    "id": "hot-tank",
                    "sql": "SELECT TankTemperature AS t FROM events WHERE deviceName = 'demo-plc' AND "
                    "TankTemperature > 30",
                    "actions": [
                        {
                            "command": {
                                "deviceName": "demo-plc",
                                "commandName": "PumpRun",
                                "values": {"PumpRun": "true"},
                            }
                        },
                        {"log": {}},
                    ],
                    "options": {"triggerOn": "transition", "minInterval": "10s"},
                },
            }
        },
    }
}


async def _body(request: Request) -> Any:
    raw = await request.body()
    if not raw.strip():
        raise ContractInvalid("the request body is empty; send a rule: {id, sql, actions, options}")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise ContractInvalid(f"request body is not valid JSON ({err})") from None


@router.post(
    "",
    status_code=201,
    response_model=BaseWithIdResponse,
    responses=error_responses(400, 409),
    openapi_extra=_RULE_BODY,
)
async def create_rule(request: Request, m: M) -> Response:
    rule = parse_rule(await _body(request))
    await m.create(rule)
    return json_response(BaseWithIdResponse(status_code=201, id=rule.id), status=201)


@router.get("/all")
async def all_rules(m: M) -> Response:
    items = [{**d.to_json_dict(), "status": s.status} for d, s in m.all()]
    return json_response({"apiVersion": "v3", "statusCode": 200, "totalCount": len(items), "rules": items})


@router.get("/engine")
async def engine_status(request: Request, m: M) -> Response:
    """Counters of the engine as a whole (events received, invalid ones, rules)."""
    source = request.app.state.events
    running = len(m.running())
    body = {
        "apiVersion": "v3",
        "statusCode": 200,
        "eventsIn": m.events_in,
        "eventsInvalid": source.invalid,
        "rulesRunning": running,
        "rulesTotal": len(m.all()),
    }
    return json_response(body)


@router.get("/id/{rule_id}", responses=error_responses(404))
async def get_rule(rule_id: str, m: M) -> Response:
    rule = m.get(rule_id)
    status = m.status(rule_id)
    return json_response(
        {"apiVersion": "v3", "statusCode": 200, "rule": {**rule.to_json_dict(), "status": status.status}}
    )


@router.put("/id/{rule_id}", response_model=BaseResponse, responses=error_responses(400, 404), openapi_extra=_RULE_BODY)
async def update_rule(rule_id: str, request: Request, m: M) -> Response:
    body = await _body(request)
    if isinstance(body, dict) and not any(k.lower() == "id" for k in body if isinstance(k, str)):
        body = {**body, "id": rule_id}
    await m.update(rule_id, parse_rule(body))
    return json_response(BaseResponse())


@router.delete("/id/{rule_id}", response_model=BaseResponse, responses=error_responses(404))
async def delete_rule(rule_id: str, m: M) -> Response:
    await m.delete(rule_id)
    return json_response(BaseResponse())


@router.post(
    "/id/{rule_id}/start",
    response_model=BaseResponse,
    responses=error_responses(400, 404, 405),
    openapi_extra=requires(Role.OPERATOR),
)
async def start_rule(rule_id: str, m: M) -> Response:
    await m.start(rule_id)
    return json_response(BaseResponse())


@router.post(
    "/id/{rule_id}/stop",
    response_model=BaseResponse,
    responses=error_responses(404),
    openapi_extra=requires(Role.OPERATOR),
)
async def stop_rule(rule_id: str, m: M) -> Response:
    await m.stop(rule_id)
    return json_response(BaseResponse())


@router.get("/id/{rule_id}/status", responses=error_responses(404))
async def rule_status(rule_id: str, m: M) -> Response:
    status = m.status(rule_id)
    return json_response({"apiVersion": "v3", "statusCode": 200, "status": status.to_json_dict()})
