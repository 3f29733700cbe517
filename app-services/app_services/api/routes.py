"""The app-service REST API beyond the shared one (ping, health, version, config, secret, metrics):
`POST /api/v3/trigger` (EdgeX's HTTP trigger) and `GET /api/v3/status` (store-and-forward state)."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.responses import Response

from app_services.messaging.trigger import context_of, event_from_body
from app_services.service import AppService
from edgeplane_common.errors import ContractInvalid, EdgeError, ServerError, ServiceUnavailable
from edgeplane_common.http import API_PREFIX, error_responses, json_response

router = APIRouter(prefix=API_PREFIX, tags=["app service"])


def _service(request: Request) -> AppService:
    service: AppService = request.app.state.app_service
    return service


@router.post("/trigger", responses=error_responses(400, 500, 503))
async def trigger(request: Request) -> Response:
    """Run the pipeline on one event (an EdgeX Event or AddEventRequest body). 200 once its output is in the
    durable buffer (or it was filtered out), with the data SetResponseData set as the body (empty without it, or
    when filtered out); 400 for an invalid event; 503 when the instance is disabled or its buffer is not ready;
    500 when a pipeline without export fails within the request."""
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
    ctx = context_of(event, "http")
    try:
        await service.events.accept([(ctx, event)])
    except EdgeError:
        raise
    except Exception as err:
        if service.events.outbox is not None:
            raise
        raise ServerError(f"the pipeline failed: {type(err).__name__}: {err}") from err
    if ctx.response is None:
        return Response(status_code=200)
    return Response(content=ctx.response, status_code=200, media_type=ctx.response_type)


@router.get("/status")
async def status(request: Request) -> Response:
    """Counters (received, filtered, buffered, exported, retried, dropped), buffer depth and the export's state."""
    return json_response(await _service(request).status())


__all__ = ["router"]
