"""core-metadata over REST, as retention needs it: every device with its autoEvents."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson
from pydantic import ValidationError

from edgeplane_common.errors import ServiceUnavailable
from edgeplane_common.models import Device

API = "/api/v3"
log = logging.getLogger(__name__)


class HttpMetadataSource:
    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.base_url + API, timeout=timeout, headers=headers)

    async def devices(self) -> list[Device]:
        """Every device, page by page (core-metadata caps a page at its MaxResultCount)."""
        devices: list[Device] = []
        seen = 0
        while True:
            body = await self._get("/device/all", {"offset": seen, "limit": -1})
            page = body.get("devices") or []
            seen += len(page)
            for raw in page:
                try:
                    devices.append(Device.model_validate(raw))
                except ValidationError as err:
                    log.warning("ignoring device %r from core-metadata: %s", raw.get("name"), err)
            if not page or seen >= int(body.get("totalCount", 0)):
                return devices

    async def _get(self, path: str, params: dict[str, Any]) -> dict[str, Any]:
        try:
            r = await self.http.get(path, params=params)
        except httpx.HTTPError as err:
            raise ServiceUnavailable(f"core-metadata at {self.base_url} is unreachable: {err}") from err
        if r.status_code == 416:  # offset past the end: nothing more
            return {}
        if r.status_code != 200:
            raise ServiceUnavailable(f"core-metadata at {self.base_url} answered {r.status_code} to GET {path}")
        try:
            body: dict[str, Any] = orjson.loads(r.content)
        except orjson.JSONDecodeError as err:
            raise ServiceUnavailable(f"core-metadata at {self.base_url} answered invalid JSON: {err}") from err
        return body

    async def close(self) -> None:
        await self.http.aclose()
