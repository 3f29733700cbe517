"""Every public REST API of a gateway, for the people-facing tools: the web console and the `edgeplane`
command line. Answers are the services' JSON as it came (the CLI prints it with `--json`); errors are the
`edgeplane_common.errors` hierarchy with the EdgeX message, so both tools can show it in words:

- a 4xx/5xx answer: `RemoteError` with the service's status and its EdgeX `message` (404 is `NotFound`);
- no answer (refused, timed out): `ServiceUnavailable` naming the service and its URL.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from edgeplane_common import API_VERSION
from edgeplane_common.edgex.profiles import check_settings, check_writable, resolve
from edgeplane_common.errors import EdgeError, NotFound, RemoteError, ServiceUnavailable
from edgeplane_common.models import DeviceProfile
from edgeplane_common.tls import client_verify

API = "/api/v3"

# EdgeX's default ports, which the launcher and compose keep (tests/unit/test_gateway_client.py checks that
# they agree with launcher/edgeplane/services.py).
DEFAULT_PORTS: dict[str, int] = {
    "core-metadata": 59881,
    "core-data": 59880,
    "core-command": 59882,
    "device-modbus": 59901,
    "device-opcua": 59997,
    "device-virtual": 59900,
    "rules-engine": 59720,
    "console": 4000,
}
APP_SERVICE_PORTS = range(59700, 59710)
"""Where app service instances listen (EdgeX's 597xx block); the console looks for them there."""


@dataclass(frozen=True)
class Endpoints:
    """Base URL of each service of one gateway."""

    services: dict[str, str]
    app_services: tuple[str, ...] = ()

    @classmethod
    def on_host(cls, url: str = "http://127.0.0.1", *, offset: int = 0) -> Endpoints:
        """The default ports (plus `offset`) on the host of `url` (`http://gw`, `gw`, `https://gw:1`)."""
        if "://" not in url:
            url = "http://" + url
        parts = urlsplit(url)
        base = f"{parts.scheme}://{parts.hostname or '127.0.0.1'}"
        services = {name: f"{base}:{port + offset}" for name, port in DEFAULT_PORTS.items()}
        return cls(services, tuple(f"{base}:{port + offset}" for port in APP_SERVICE_PORTS))

    def url(self, service: str) -> str:
        try:
            return self.services[service]
        except KeyError:
            raise NotFound(f"unknown service {service!r}; known: {', '.join(self.services)}") from None


def quoted(name: str) -> str:
    return quote(name, safe="")


@dataclass
class GatewayClient:
    endpoints: Endpoints
    token: str | None = None
    timeout: float = 10.0
    transport: httpx.AsyncBaseTransport | None = None
    ca_file: str | None = None
    """The CA `https://` services are verified with (default: the default trust store)."""
    http: httpx.AsyncClient = field(init=False)
    _auth: dict[str, str] | None = field(default=None, init=False, repr=False)
    """Set on a view made by `as_user`: the Authorization sent instead of the client's own."""

    def __post_init__(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        # trust_env off: a gateway on the LAN must not be reached through a proxy from the environment.
        self.http = httpx.AsyncClient(
            timeout=self.timeout,
            headers=headers,
            transport=self.transport,
            trust_env=False,
            verify=client_verify(self.ca_file),
        )

    async def close(self) -> None:
        await self.http.aclose()

    def as_user(self, token: str) -> GatewayClient:
        """A view of this client that sends `token` (a person's, from `login`) instead of its own, over the
        same connections: the services then apply that person's role. Close the client, not its views."""
        view = copy.copy(self)
        view.token = token
        view._auth = {"Authorization": f"Bearer {token}"}
        return view

    async def login(self, username: str, password: str) -> str:
        """core-metadata's `POST /api/v3/auth/login` (secure mode): the user's token. A wrong name or password
        is a RemoteError with status 401 (429 after too many failures)."""
        body = await self._call(
            "core-metadata", "POST", "/auth/login", json={"username": username, "password": password}
        )
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise RemoteError("core-metadata answered the login without a token", 502)
        return token

    async def __aenter__(self) -> GatewayClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- any service -------------------------------------------------------------------------------------
    async def health(self, service: str) -> dict[str, Any]:
        """`/api/v3/health` (200 or 503 both carry the checks); ServiceUnavailable when nothing answers."""
        return await self._call(service, "GET", "/health", ok=(200, 503))

    async def version(self, service: str) -> dict[str, Any]:
        return await self._call(service, "GET", "/version")

    async def metrics_text(self, base_url: str, *, timeout: float | None = None) -> str:
        """The Prometheus text of a service at `base_url` (app services, which have no fixed name)."""
        try:
            r = await self.http.get(base_url + "/metrics", timeout=timeout or self.timeout, headers=self._auth)
        except httpx.HTTPError as err:
            raise ServiceUnavailable(f"{base_url} is unreachable: {err or type(err).__name__}") from err
        if r.status_code != 200:
            raise RemoteError(f"{base_url}/metrics answered {r.status_code}", r.status_code)
        return r.text

    async def get_at(self, base_url: str, path: str, *, timeout: float | None = None) -> dict[str, Any]:
        """GET `/api/v3{path}` of a service known only by its URL (an app service instance)."""
        return await self._send(base_url, base_url, "GET", path, timeout=timeout)

    # -- core-metadata -----------------------------------------------------------------------------------
    async def profiles(self) -> list[dict[str, Any]]:
        return await self._all("core-metadata", "/deviceprofile/all", "profiles")

    async def profile(self, name: str) -> dict[str, Any]:
        body = await self._call("core-metadata", "GET", f"/deviceprofile/name/{quoted(name)}")
        return dict(body["profile"])

    async def upload_profile(self, content: bytes, *, replace: bool = False, filename: str = "profile.yaml") -> None:
        """POST (or PUT, to replace) the YAML file; core-metadata's error names the line for bad YAML."""
        files = {"file": (filename, content, "application/x-yaml")}
        await self._call("core-metadata", "PUT" if replace else "POST", "/deviceprofile/uploadfile", files=files)

    async def delete_profile(self, name: str) -> None:
        await self._call("core-metadata", "DELETE", f"/deviceprofile/name/{quoted(name)}")

    async def devices(self) -> list[dict[str, Any]]:
        return await self._all("core-metadata", "/device/all", "devices")

    async def device(self, name: str) -> dict[str, Any]:
        body = await self._call("core-metadata", "GET", f"/device/name/{quoted(name)}")
        return dict(body["device"])

    async def add_device(self, device: dict[str, Any]) -> None:
        await self._batch("core-metadata", "POST", "/device", "device", device)

    async def update_device(self, patch: dict[str, Any]) -> None:
        """PATCH: `patch` names the device and holds only the fields to change."""
        await self._batch("core-metadata", "PATCH", "/device", "device", patch)

    async def delete_device(self, name: str) -> None:
        await self._call("core-metadata", "DELETE", f"/device/name/{quoted(name)}")

    async def set_admin_state(self, name: str, state: str) -> None:
        await self.update_device({"name": name, "adminState": state})

    async def device_services(self) -> list[dict[str, Any]]:
        return await self._all("core-metadata", "/deviceservice/all", "services")

    async def add_device_service(self, service: dict[str, Any]) -> None:
        await self._batch("core-metadata", "POST", "/deviceservice", "service", service)

    async def update_device_service(self, patch: dict[str, Any]) -> None:
        await self._batch("core-metadata", "PATCH", "/deviceservice", "service", patch)

    async def delete_device_service(self, name: str) -> None:
        await self._call("core-metadata", "DELETE", f"/deviceservice/name/{quoted(name)}")

    async def provision_watchers(self) -> list[dict[str, Any]]:
        return await self._all("core-metadata", "/provisionwatcher/all", "provisionWatchers")

    async def add_provision_watcher(self, watcher: dict[str, Any]) -> None:
        await self._batch("core-metadata", "POST", "/provisionwatcher", "provisionWatcher", watcher)

    async def update_provision_watcher(self, patch: dict[str, Any]) -> None:
        await self._batch("core-metadata", "PATCH", "/provisionwatcher", "provisionWatcher", patch)

    async def delete_provision_watcher(self, name: str) -> None:
        await self._call("core-metadata", "DELETE", f"/provisionwatcher/name/{quoted(name)}")

    # -- core-command ------------------------------------------------------------------------------------
    async def device_commands(self, name: str) -> list[dict[str, Any]]:
        body = await self._call("core-command", "GET", f"/device/name/{quoted(name)}")
        return list(body.get("deviceCoreCommand", {}).get("coreCommands") or [])

    async def read(self, device: str, command: str) -> dict[str, Any]:
        """A read through core-command: the event it returned (`{}` when none)."""
        body = await self._call("core-command", "GET", f"/device/name/{quoted(device)}/{quoted(command)}")
        return dict(body.get("event") or {})

    async def write(self, device: str, command: str, values: dict[str, str]) -> None:
        await self._call("core-command", "PUT", f"/device/name/{quoted(device)}/{quoted(command)}", json=values)

    # -- core-data ---------------------------------------------------------------------------------------
    async def readings(
        self,
        device: str,
        *,
        resource: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        limit: int = 1000,
    ) -> list[dict[str, Any]]:
        """One query: the device's (or one resource's) readings, newest first, within [start, end]."""
        path = f"/reading/device/name/{quoted(device)}"
        if resource:
            path += f"/resourceName/{quoted(resource)}"
        if start is not None:
            path += f"/start/{to_nanos(start)}/end/{to_nanos(end or datetime.now(UTC))}"
        body = await self._call("core-data", "GET", path, params={"limit": limit})
        return list(body.get("readings") or [])

    async def event_count(self) -> int:
        return int((await self._call("core-data", "GET", "/event/count")).get("count", 0))

    # -- rules engine ------------------------------------------------------------------------------------
    async def rules(self) -> list[dict[str, Any]]:
        return list((await self._call("rules-engine", "GET", "/rule/all")).get("rules") or [])

    async def rule(self, rule_id: str) -> dict[str, Any]:
        body = await self._call("rules-engine", "GET", f"/rule/id/{quoted(rule_id)}")
        return dict(body.get("rule") or body)

    async def create_rule(self, rule: dict[str, Any]) -> None:
        await self._call("rules-engine", "POST", "/rule", json=rule)

    async def update_rule(self, rule_id: str, rule: dict[str, Any]) -> None:
        await self._call("rules-engine", "PUT", f"/rule/id/{quoted(rule_id)}", json=rule)

    async def delete_rule(self, rule_id: str) -> None:
        await self._call("rules-engine", "DELETE", f"/rule/id/{quoted(rule_id)}")

    async def start_rule(self, rule_id: str) -> None:
        await self._call("rules-engine", "POST", f"/rule/id/{quoted(rule_id)}/start")

    async def stop_rule(self, rule_id: str) -> None:
        await self._call("rules-engine", "POST", f"/rule/id/{quoted(rule_id)}/stop")

    async def rule_status(self, rule_id: str) -> dict[str, Any]:
        body = await self._call("rules-engine", "GET", f"/rule/id/{quoted(rule_id)}/status")
        return dict(body.get("status") or body)

    # -- internals ---------------------------------------------------------------------------------------
    async def _all(self, service: str, path: str, key: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            body = await self._call(service, "GET", path, params={"offset": len(items), "limit": -1})
            page = body.get(key) or []
            items.extend(page)
            if not page or len(items) >= int(body.get("totalCount", 0)):
                return items

    async def _batch(self, service: str, method: str, path: str, key: str, entity: dict[str, Any]) -> None:
        """EdgeX's one-item batch: 207 with a status per item; the item's error is raised."""
        answer = await self._call(service, method, path, json=[{"apiVersion": API_VERSION, key: entity}])
        items = answer.get("items") if isinstance(answer, dict) else None
        for item in items or []:
            status = item.get("statusCode")
            if isinstance(status, int) and status >= 300:
                raise _error(status, str(item.get("message") or f"{service} answered {status}"))

    async def _call(self, service: str, method: str, path: str, **kw: Any) -> dict[str, Any]:
        return await self._send(service, self.endpoints.url(service), method, path, **kw)

    async def _send(
        self,
        who: str,
        base_url: str,
        method: str,
        path: str,
        *,
        ok: tuple[int, ...] = (200, 201, 207),
        timeout: float | None = None,
        **kw: Any,
    ) -> dict[str, Any]:
        url = base_url + API + path
        try:
            r = await self.http.request(method, url, timeout=timeout or self.timeout, headers=self._auth, **kw)
        except httpx.HTTPError as err:
            why = str(err) or type(err).__name__
            raise ServiceUnavailable(f"{who} at {base_url} is unreachable: {why}") from err
        try:
            answer = orjson.loads(r.content) if r.content else {}
        except orjson.JSONDecodeError:
            answer = None
        if r.status_code in ok and answer is not None:
            # A batch answers a list (one result per item): keep it under "items".
            return answer if isinstance(answer, dict) else {"items": answer}
        message = answer.get("message") if isinstance(answer, dict) else None
        raise _error(r.status_code, str(message or r.text[:300] or f"{who} answered HTTP {r.status_code}"))


def _error(status: int, message: str) -> EdgeError:
    return NotFound(message) if status == 404 else RemoteError(message, status)


def to_nanos(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000_000)


_POSITION = re.compile(r"line (\d+)(?:,? column (\d+))?", re.IGNORECASE)


def error_position(message: str) -> tuple[int, int] | None:
    """(line, column) named in an error message ("... at line 3, column 7: ..."), as core-metadata's YAML
    errors and the rules engine's SQL errors word them; None when it names none."""
    match = _POSITION.search(message)
    if not match:
        return None
    return int(match.group(1)), int(match.group(2) or 1)


__all__ = [
    "APP_SERVICE_PORTS",
    "DEFAULT_PORTS",
    "Endpoints",
    "GatewayClient",
    "check_write",
    "error_position",
    "to_nanos",
]


def check_write(profile: dict[str, Any], device: str, command: str, values: dict[str, str]) -> None:
    """The checks core-command makes before relaying a write (command exists and is writable, every value
    fits its resource's type, range and mappings), made by a tool before it sends: ContractInvalid,
    NotAllowed or NotFound with core-command's words."""
    resolved = resolve(DeviceProfile.model_validate(profile), command)
    check_writable(device, resolved)
    check_settings(device, resolved, values)
