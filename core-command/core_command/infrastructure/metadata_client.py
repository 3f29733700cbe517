"""core-metadata over REST: the devices and profiles core-command needs (read-only)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import orjson

from core_command.application.errors import RemoteError
from edgeplane_common.errors import CommunicationError, EdgeError, NotFound, RangeNotSatisfiable, ServiceUnavailable
from edgeplane_common.models import Device, DeviceProfile

API = "/api/v3"


class MetadataHttpClient:
    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 5.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        # Keep-alive connections: a cache miss costs one request, not a TCP handshake too.
        self.http = httpx.AsyncClient(base_url=self.base_url + API, timeout=timeout, headers=headers)

    async def close(self) -> None:
        await self.http.aclose()

    async def device(self, name: str) -> Device:
        body = await self._get(f"/device/name/{quote(name, safe='')}", what=f"device {name!r}")
        return Device.model_validate(body["device"])

    async def profile(self, name: str) -> DeviceProfile:
        body = await self._get(f"/deviceprofile/name/{quote(name, safe='')}", what=f"device profile {name!r}")
        return DeviceProfile.model_validate(body["profile"])

    async def devices(self, offset: int, limit: int) -> tuple[list[Device], int]:
        body = await self._get("/device/all", what="devices", params={"offset": offset, "limit": limit})
        return [Device.model_validate(d) for d in body.get("devices") or []], int(body.get("totalCount", 0))

    async def _get(self, path: str, *, what: str, params: dict[str, Any] | None = None) -> Any:
        try:
            r = await self.http.get(path, params=params)
        except httpx.HTTPError as err:
            why = str(err) or type(err).__name__
            raise ServiceUnavailable(f"core-metadata at {self.base_url} is unreachable: {why}") from err
        try:
            body = orjson.loads(r.content)
        except orjson.JSONDecodeError:
            body = None
        if r.status_code == 200 and isinstance(body, dict):
            return body
        message = body.get("message") if isinstance(body, dict) else None
        raise _error(r.status_code, what, message or r.text[:300])


def _error(status: int, what: str, message: str) -> EdgeError:
    if status == 404:
        return NotFound(f"{what} does not exist" if what != "devices" else message)
    if status == 416:
        return RangeNotSatisfiable(message)
    if 400 <= status < 500:
        return RemoteError(f"core-metadata refused the request for {what}: {message}", status)
    if status == 503:
        return ServiceUnavailable(f"core-metadata is unavailable: {message}")
    return CommunicationError(f"core-metadata answered {status} for {what}: {message}")
