"""What core-command's routers share: the use case, error documentation, paging parameters."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request

from core_command.application.commands import CommandManager
from edgeplane_common.models import BaseResponse

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": BaseResponse, "description": desc}
    for code, desc in {
        400: "Bad request: the message says what is wrong (e.g. a value that does not fit the profile)",
        401: "Missing or invalid bearer token",
        404: "No such device, or the device has no such command",
        405: "Command not allowed in this direction (writing a read-only or reading a write-only command)",
        416: "Offset beyond the number of devices",
        423: "Device is LOCKED (adminState) or DOWN (operatingState)",
        500: "Internal error",
        502: "The device service or the device failed the command",
        503: "The device service (or core-metadata) did not answer in time or is not running",
    }.items()
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error responses of one route (401 whenever a token is configured, 500 always)."""
    return {code: ERROR_RESPONSES[code] for code in sorted({*codes, 401, 500})}


def manager(request: Request) -> CommandManager:
    m: CommandManager = request.app.state.commands
    return m


Offset = Annotated[int, Query(ge=0, description="Devices to skip")]
Limit = Annotated[int, Query(ge=-1, description="Devices to return; -1 = all up to core-metadata's MaxResultCount")]
