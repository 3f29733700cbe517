"""JSON responses exactly as EdgeX clients expect: `Content-Type: application/json`, no charset."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse

from edgeplane_common.errors import EdgeError
from edgeplane_common.models.base import BaseResponse, ContractModel


class EdgeJSONResponse(JSONResponse):
    # A JSONResponse subclass, so FastAPI still documents each route's response_model.
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        if isinstance(content, ContractModel):
            content = content.to_json_dict()
        elif isinstance(content, list):
            content = [c.to_json_dict() if isinstance(c, ContractModel) else c for c in content]
        return orjson.dumps(content)

    def init_headers(self, headers: Any = None) -> None:
        super().init_headers(headers)
        # Starlette would not add a charset for application/json, but make the header exact anyway.
        self.raw_headers = [(k, b"application/json") if k == b"content-type" else (k, v) for k, v in self.raw_headers]


def json_response(model: ContractModel | list[Any] | dict[str, Any], status: int = 200) -> EdgeJSONResponse:
    return EdgeJSONResponse(model, status_code=status)


def error_response(err: EdgeError, request_id: str | None = None) -> EdgeJSONResponse:
    body = BaseResponse(message=err.message, status_code=err.status_code, request_id=request_id)
    return EdgeJSONResponse(body, status_code=err.status_code)


def error_body(status: int, message: str) -> EdgeJSONResponse:
    return EdgeJSONResponse(BaseResponse(message=message, status_code=status), status_code=status)
