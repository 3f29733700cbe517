"""The device service's view of core-metadata over REST: registration, provisioning, state updates."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import orjson

from edgeplane_common.errors import CommunicationError, ServiceUnavailable
from edgeplane_common.models import Device, DeviceProfile, DeviceService

log = logging.getLogger(__name__)
API = "/api/v3"


class MetadataClient:
    def __init__(self, base_url: str, *, token: str | None = None, timeout: float = 10.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(base_url=base_url.rstrip("/") + API, timeout=timeout, headers=headers)

    async def close(self) -> None:
        await self.http.aclose()

    async def wait_ready(self, timeout: float = 120.0) -> None:
        """core-metadata may start after us (compose); retry ping with capped backoff, logging once."""
        loop = asyncio.get_running_loop()
        deadline, delay, warned = loop.time() + timeout, 0.2, False
        while True:
            try:
                if (await self.http.get("/ping")).status_code == 200:
                    if warned:
                        log.info("core-metadata is reachable at %s", self.http.base_url)
                    return
            except httpx.HTTPError as err:
                if not warned:
                    log.warning("core-metadata not reachable at %s yet (%s); retrying", self.http.base_url, err)
                    warned = True
            if loop.time() > deadline:
                raise ServiceUnavailable(f"core-metadata at {self.http.base_url} did not answer within {timeout}s")
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def register_service(self, service: DeviceService) -> None:
        """Add the service, or update its address/labels if it exists (EdgeX device services do the same)."""
        body = [{"apiVersion": "v3", "service": service.to_json_dict()}]
        result = (await self._call("POST", "/deviceservice", body))[0]
        if result["statusCode"] == 409:
            patch = {"name": service.name, "baseAddress": service.base_address, "labels": service.labels}
            result = (await self._call("PATCH", "/deviceservice", [{"apiVersion": "v3", "service": patch}]))[0]
        if result["statusCode"] >= 300:
            raise CommunicationError(f"could not register device service {service.name!r}: {result.get('message')}")

    async def devices_of(self, service: str) -> list[Device]:
        body = await self._call("GET", f"/device/service/name/{service}?limit=-1")
        return [Device.model_validate(d) for d in body.get("devices", [])]

    async def profile(self, name: str) -> DeviceProfile | None:
        r = await self._request("GET", f"/deviceprofile/name/{name}")
        if r.status_code == 404:
            return None
        return DeviceProfile.model_validate(self._json(r)["profile"])

    async def add_profile(self, profile: dict[str, Any]) -> tuple[int, str | None]:
        result = (await self._call("POST", "/deviceprofile", [{"apiVersion": "v3", "profile": profile}]))[0]
        return int(result["statusCode"]), result.get("message")

    async def add_device(self, device: dict[str, Any]) -> tuple[int, str | None]:
        # Our own devices need no validation round trip back to ourselves.
        body = [{"apiVersion": "v3", "device": device}]
        result = (await self._call("POST", "/device?bypassValidation=true", body))[0]
        return int(result["statusCode"]), result.get("message")

    async def set_operating_state(self, device: str, state: str) -> None:
        body = [{"apiVersion": "v3", "device": {"name": device, "operatingState": state}}]
        result = (await self._call("PATCH", "/device?bypassValidation=true", body))[0]
        if result["statusCode"] >= 300:
            raise CommunicationError(f"could not set {device!r} {state}: {result.get('message')}")

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        r = await self._request(method, path, body)
        if r.status_code >= 400 and r.status_code != 207:
            raise CommunicationError(f"core-metadata {method} {path} answered {r.status_code}: {r.text[:300]}")
        return self._json(r)

    async def _request(self, method: str, path: str, body: Any = None) -> httpx.Response:
        content = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if content else None
        try:
            return await self.http.request(method, path, content=content, headers=headers)
        except httpx.HTTPError as err:
            raise ServiceUnavailable(f"core-metadata unreachable: {err}") from err

    @staticmethod
    def _json(r: httpx.Response) -> Any:
        return orjson.loads(r.content)
