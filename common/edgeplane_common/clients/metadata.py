"""core-metadata over REST: the one typed client every service uses (core-command, core-data, the device SDK
and the services built after them).

EdgeX error bodies (`{"statusCode", "message"}`, for a whole response or per item of a 207 batch) are mapped
here, once, to the `edgeplane_common.errors` hierarchy: 404 NotFound, 416 RangeNotSatisfiable, 503 or
unreachable ServiceUnavailable, any other 4xx a RemoteError with core-metadata's status, anything else a
CommunicationError. Names are quoted in paths, so `a/b` or `x y` address the entity named so.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import quote

import httpx
import orjson
from pydantic import ValidationError

from edgeplane_common import API_VERSION
from edgeplane_common.bootstrap import Backoff, connect_with_retry
from edgeplane_common.errors import (
    CommunicationError,
    EdgeError,
    NotFound,
    RangeNotSatisfiable,
    RemoteError,
    ServiceUnavailable,
)
from edgeplane_common.models import Device, DeviceProfile, DeviceService, OperatingState, ProvisionWatcher
from edgeplane_common.tls import client_verify

log = logging.getLogger(__name__)
API = "/api/v3"
T = TypeVar("T")


def edgex_error(status: int, message: str, what: str) -> EdgeError:
    """The error for core-metadata's answer `status` with `message` to a request about `what`."""
    if status == 404:
        return NotFound(message)
    if status == 416:
        return RangeNotSatisfiable(message)
    if status == 503:
        return ServiceUnavailable(f"core-metadata is unavailable: {message}")
    if 400 <= status < 500:
        return RemoteError(f"core-metadata refused the request for {what}: {message}", status)
    return CommunicationError(f"core-metadata answered {status} for {what}: {message}")


def _quoted(name: str) -> str:
    return quote(name, safe="")


class MetadataClient:
    """Keep-alive HTTP connections to core-metadata (a cache miss costs one request, not a handshake too)."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 10.0,
        transport: httpx.AsyncBaseTransport | None = None,
        ca_file: str | None = None,
    ) -> None:
        """`ca_file`: the CA an `https://` core-metadata is verified with (default: the default trust store)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._open = functools.partial(
            httpx.AsyncClient,
            base_url=self.base_url + API,
            timeout=timeout,
            headers=headers,
            transport=transport,
            verify=client_verify(ca_file),
        )
        self.http = self._open()

    async def close(self) -> None:
        """Close the connections. A later request opens new ones: the app owning this client may run its
        lifespan again (ASGI test harnesses do, per test), and the client is built once, with the app."""
        await self.http.aclose()

    # -- readiness ---------------------------------------------------------------------------------------
    async def ping(self) -> None:
        """ServiceUnavailable unless core-metadata answers its ping."""
        await self._get("/ping", what="ping")

    async def wait_ready(self, timeout: float = 120.0) -> None:
        """core-metadata may start after us (compose): retry the ping with capped backoff, logging the wait
        once and the recovery once; ServiceUnavailable after `timeout` seconds."""
        await connect_with_retry(
            f"core-metadata at {self.base_url}",
            self.ping,
            timeout=timeout,
            backoff=Backoff(first=0.2, cap=5.0),
            retry_on=(EdgeError,),
            log=log,
        )

    # -- reads -------------------------------------------------------------------------------------------
    async def device(self, name: str) -> Device:
        """NotFound if core-metadata has no such device."""
        what = f"device {name!r}"
        body = await self._get(f"/device/name/{_quoted(name)}", what=what, missing=f"{what} does not exist")
        return Device.model_validate(body["device"])

    async def profile(self, name: str) -> DeviceProfile:
        """NotFound if core-metadata has no such profile."""
        what = f"device profile {name!r}"
        body = await self._get(f"/deviceprofile/name/{_quoted(name)}", what=what, missing=f"{what} does not exist")
        return DeviceProfile.model_validate(body["profile"])

    async def devices(self, offset: int, limit: int) -> tuple[list[Device], int]:
        """One page of all devices (ordered by name) and the total; limit -1 = as many as core-metadata allows
        (its MaxResultCount). RangeNotSatisfiable when offset is past the end."""
        body = await self._get("/device/all", what="devices", params={"offset": offset, "limit": limit})
        return [Device.model_validate(d) for d in body.get("devices") or []], int(body.get("totalCount", 0))

    async def all_devices(self) -> list[Device]:
        """Every device, page by page. A device core-metadata holds but we cannot read is skipped with a
        warning rather than failing the whole list (retention must go on for the others)."""
        return await self._all("/device/all", "devices", "devices", _lenient(Device))

    async def devices_of(self, service: str) -> list[Device]:
        """Every device of device service `service`, page by page."""
        path = f"/device/service/name/{_quoted(service)}"
        return await self._all(path, f"devices of {service!r}", "devices", Device.model_validate)

    async def provision_watchers_of(self, service: str) -> list[ProvisionWatcher]:
        """Every provision watcher of device service `service`, page by page."""
        path = f"/provisionwatcher/service/name/{_quoted(service)}"
        what = f"provision watchers of {service!r}"
        return await self._all(path, what, "provisionWatchers", ProvisionWatcher.model_validate)

    # -- writes ------------------------------------------------------------------------------------------
    async def register_service(self, service: DeviceService) -> None:
        """Add the service, or update its address and labels if it exists (as EdgeX device services do)."""
        what = f"device service {service.name!r}"
        try:
            await self._add("/deviceservice", "service", service.to_json_dict(), what)
        except EdgeError as err:
            if err.status_code != 409:
                raise
            patch = {"name": service.name, "baseAddress": service.base_address, "labels": service.labels}
            await self._batch("PATCH", "/deviceservice", [{"apiVersion": API_VERSION, "service": patch}], what)

    async def add_profile(self, profile: dict[str, Any]) -> str | None:
        """Add a profile (its EdgeX JSON); its id. A name already taken raises an error with status 409."""
        return await self._add("/deviceprofile", "profile", profile, f"device profile {profile.get('name')!r}")

    async def add_device(self, device: dict[str, Any]) -> str | None:
        """Add a device of this service (its EdgeX JSON); its id. A name already taken: status 409. Validation
        by the owning device service is bypassed: that is the caller, and it needs no round trip to itself."""
        what = f"device {device.get('name')!r}"
        return await self._add("/device?bypassValidation=true", "device", device, what)

    async def set_operating_state(self, device: str, state: OperatingState | str) -> None:
        value = state.value if isinstance(state, OperatingState) else state
        body = [{"apiVersion": API_VERSION, "device": {"name": device, "operatingState": value}}]
        await self._batch("PATCH", "/device?bypassValidation=true", body, f"device {device!r}")

    # -- internals ---------------------------------------------------------------------------------------
    async def _add(self, path: str, key: str, entity: dict[str, Any], what: str) -> str | None:
        result = await self._batch("POST", path, [{"apiVersion": API_VERSION, key: entity}], what)
        found = result.get("id")
        return found if isinstance(found, str) else None

    async def _batch(self, method: str, path: str, body: list[dict[str, Any]], what: str) -> dict[str, Any]:
        """A one-item batch request (answered 207 with a status per item); the item's result, or its error."""
        answer = await self._request(method, path, what=what, body=body)
        if not isinstance(answer, list) or not answer or not isinstance(answer[0], dict):
            raise CommunicationError(f"core-metadata answered {method} {path} with {str(answer)[:200]}")
        result: dict[str, Any] = answer[0]
        status = result.get("statusCode")
        if not isinstance(status, int) or status >= 300:
            raise edgex_error(status if isinstance(status, int) else 500, str(result.get("message")), what)
        return result

    async def _all(self, path: str, what: str, key: str, parse: Callable[[Any], T | None]) -> list[T]:
        """Every item of a paged list: core-metadata caps a page at its MaxResultCount; 416 = past the end."""
        items: list[T] = []
        seen = 0
        while True:
            try:
                body = await self._get(path, what=what, params={"offset": seen, "limit": -1})
            except RangeNotSatisfiable:
                return items
            page = body.get(key) or []
            seen += len(page)
            items.extend(item for item in map(parse, page) if item is not None)
            if not page or seen >= int(body.get("totalCount", 0)):
                return items

    async def _get(
        self, path: str, *, what: str, params: dict[str, Any] | None = None, missing: str | None = None
    ) -> dict[str, Any]:
        body = await self._request("GET", path, what=what, params=params, missing=missing)
        if not isinstance(body, dict):
            raise CommunicationError(f"core-metadata answered GET {path} with {str(body)[:200]}")
        return body

    async def _request(
        self,
        method: str,
        path: str,
        *,
        what: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        missing: str | None = None,
    ) -> Any:
        content = orjson.dumps(body) if body is not None else None
        headers = {"Content-Type": "application/json"} if content is not None else None
        try:
            if self.http.is_closed:
                self.http = self._open()
            r = await self.http.request(method, path, params=params, content=content, headers=headers)
        except httpx.HTTPError as err:
            why = str(err) or type(err).__name__
            raise ServiceUnavailable(f"core-metadata at {self.base_url} is unreachable: {why}") from err
        try:
            answer = orjson.loads(r.content)
        except orjson.JSONDecodeError:
            answer = None
        if r.status_code in (200, 201, 207) and answer is not None:
            return answer
        message = answer.get("message") if isinstance(answer, dict) else None
        if r.status_code == 404 and missing is not None:
            message = missing
        raise edgex_error(r.status_code, message or r.text[:300] or f"HTTP {r.status_code}", what)


def _lenient(model: type[Device]) -> Callable[[Any], Device | None]:
    def parse(raw: Any) -> Device | None:
        try:
            return model.model_validate(raw)
        except ValidationError as err:
            name = raw.get("name") if isinstance(raw, dict) else None
            log.warning("ignoring device %r from core-metadata: %s", name, err)
            return None

    return parse
