"""REST: /api/v3/uom — the units of measure profiles may use."""

from __future__ import annotations

from typing import Annotated, Any

import tomli_w
from fastapi import APIRouter, Header, Request
from starlette.responses import Response

from core_metadata.api.deps import ERRORS
from edgeplane_common import API_VERSION
from edgeplane_common.http import json_response
from edgeplane_common.models.base import ContractModel

router = APIRouter(prefix="/api/v3", tags=["units of measure"], responses=ERRORS)


class UnitsOfMeasureResponse(ContractModel):
    api_version: str = API_VERSION
    status_code: int = 200
    uom: dict[str, Any]


@router.get("/uom", response_model=UnitsOfMeasureResponse)
async def get_uom(request: Request, accept: Annotated[str | None, Header()] = None) -> Response:
    uom: dict[str, Any] = request.app.state.uom
    if accept and "application/toml" in accept:
        return Response(tomli_w.dumps(uom), media_type="application/toml")
    return json_response(UnitsOfMeasureResponse(uom=uom))
