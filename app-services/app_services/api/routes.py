"""The app-service REST API beyond the shared one (ping, health, version, config, secret, metrics):
`POST /api/v3/trigger` (EdgeX's HTTP trigger) and `GET /api/v3/status` (store-and-forward state)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from app_services.messaging.trigger import context_of, event_from_body
from app_services.service import AppService
from edgeplane_common.errors import ContractInvalid, ServiceUnavailable
from edgeplane_common.http import API_PREFIX, error_responses, json_response

router = APIRouter(prefix=API_PREFIX, tags=["app service"])


def _service(request: Request) -> AppService:
    service: AppService = request.app.state.app_service
    return service


@router.post("/trigger", responses=error_responses(400, 503))
async def trigger(request: Request) -> Response:
    """Run the pipeline on one event (an EdgeX Event or AddEventRequest body). 200 with an empty body once
    its output is in the durable buffer (or it was filtered out); 400 for an invalid event; 503 when the
    instance is disabled or its buffer is not ready."""
    service = _service(request)
    if service.disabled:
        raise ServiceUnavailable(f"{service.name} is disabled: {service.disabled}")
    if service.events is None or not service.buffer_ready.is_set():
        raise ServiceUnavailable(f"{service.name} is not ready: its export buffer is not set up yet")
    body = await request.body()
    try:
        raw: Any = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        service.counters.invalid += 1
        raise ContractInvalid(f"the request body is not JSON: {err}") from None
    try:
        event = event_from_body(raw)
    except ContractInvalid:
        service.counters.invalid += 1
        raise
    await service.events.accept([(context_of(event, "http"), event)])
    return Response(status_code=200)


@router.get("/status")
async def status(request: Request) -> Response:
    """Counters (received, filtered, buffered, exported, retried, dropped), buffer depth and the export's state."""
    return json_response(await _service(request).status())


__all__ = ["router"]
