"""The error responses routes document in OpenAPI, written once for every service."""

from __future__ import annotations

from typing import Any

from edgeplane_common.models.base import BaseResponse

_DESCRIPTIONS: dict[int, str] = {
    400: "Bad request: the message says what is wrong",
    401: "Missing or invalid bearer token",
    403: "Secure mode: the token's role does not allow this request",
    404: "Not found: no such entity, or no such command of the device",
    405: "Not allowed in this direction (writing a read-only or reading a write-only command)",
    409: "Conflict: a duplicate name or id, or the entity is still in use",
    413: "Body or entity too large",
    415: "Unsupported content type",
    416: "Offset beyond the number of items",
    423: "Locked: the device or its service is LOCKED (adminState) or DOWN (operatingState)",
    429: "Too many failed logins for this user or address: wait and try again",
    500: "Internal error",
    502: "The device service or the device failed the command",
    503: "A dependency (store, core-metadata, device service) is unavailable or did not answer in time",
}

ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": BaseResponse, "description": desc} for code, desc in _DESCRIPTIONS.items()
}
"""Every error status a service answers with, each an EdgeX BaseResponse."""


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The documented error responses of a router or route: `codes`, plus 401 (whenever a token is
    configured) and 500, which any route may answer."""
    return {code: ERROR_RESPONSES[code] for code in sorted({*codes, 401, 500})}


__all__ = ["ERROR_RESPONSES", "error_responses"]
