"""What core-metadata's routers take from FastAPI, each written once: dependency aliases and error docs."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from core_metadata.api.common import Managers
from edgeplane_common.http import error_responses

ERRORS: dict[int | str, dict[str, Any]] = error_responses(400, 404, 409, 413, 415, 416, 423, 503)
"""The error statuses core-metadata's routes answer with."""


def managers(request: Request) -> Managers:
    m: Managers = request.app.state.managers
    return m


M = Annotated[Managers, Depends(managers)]
