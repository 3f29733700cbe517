"""The gateway's state as the console shows it, gathered from the public REST APIs in one pass.

One collector for every browser tab (the console polls the services every few seconds, not once per tab);
each part is fetched on its own, so a service that is down shows as down and the rest still shows.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from edgeplane_common.errors import EdgeError
from edgeplane_console.application.exports import ExportStatus, summarize_metrics


class Gateway(Protocol):
    """What the collector asks of the gateway (edgeplane_common.clients.gateway.GatewayClient)."""

    async def health(self, service: str) -> dict[str, Any]: ...
    async def version(self, service: str) -> dict[str, Any]: ...
    async def devices(self) -> list[dict[str, Any]]: ...
    async def rules(self) -> list[dict[str, Any]]: ...
    async def rule_status(self, rule_id: str) -> dict[str, Any]: ...
    async def get_at(self, base_url: str, path: str, *, timeout: float | None = None) -> dict[str, Any]: ...
    async def metrics_text(self, base_url: str, *, timeout: float | None = None) -> str: ...


@dataclass
class ServiceState:
    name: str
    url: str
    up: bool
    """Answers /api/v3/health with every check up."""
    reachable: bool
    version: str = ""
    message: str = ""
    """Why it is not up: the failing checks, or why it cannot be reached."""

    @property
    def port(self) -> str:
        return self.url.rsplit(":", 1)[-1]


@dataclass
class Problem:
    kind: str
    subject: str
    text: str


@dataclass
class Snapshot:
    at: float = 0.0
    services: list[ServiceState] = field(default_factory=list)
    devices: list[dict[str, Any]] | None = None
    """None when core-metadata could not be asked (then `devices_error` says why)."""
    devices_error: str = ""
    rules: list[dict[str, Any]] | None = None
    rules_error: str = ""
    exports: list[ExportStatus] = field(default_factory=list)

    def service(self, name: str) -> ServiceState | None:
        return next((s for s in self.services if s.name == name), None)

    def devices_by_state(self) -> tuple[int, int]:
        """(UP, DOWN) device counts."""
        devices = self.devices or []
        up = sum(1 for d in devices if d.get("operatingState") == "UP")
        return up, len(devices) - up

    def problems(self) -> list[Problem]:
        """What needs a person: services down, devices DOWN, rules in error, exports buffering."""
        found: list[Problem] = []
        for s in self.services:
            if not s.up:
                found.append(Problem("service", s.name, s.message or "down"))
        if self.devices is None and self.devices_error:
            found.append(Problem("devices", "core-metadata", self.devices_error))
        for d in self.devices or []:
            if d.get("operatingState") == "DOWN":
                found.append(
                    Problem("device", str(d.get("name")), "device is DOWN (its device service cannot reach it)")
                )
        for rule in self.rules or []:
            counters = rule.get("counters") or {}
            error = counters.get("lastError")
            if error and not _fired_since_error(counters):
                found.append(Problem("rule", str(rule.get("id")), str(error)))
        for export in self.exports:
            if export.buffered:
                found.append(
                    Problem("export", export.name, f"{export.buffered:g} messages buffered, waiting to be sent")
                )
            if export.error:
                found.append(Problem("export", export.name, export.error))
        return found


def _fired_since_error(counters: dict[str, Any]) -> bool:
    """The rule has fired its action since its last error: the error is history (still in its status), not an
    open problem. A rule whose one action once timed out on a busy gateway must not show as broken for ever."""
    fired, failed = counters.get("lastFired"), counters.get("lastErrorAt")
    return isinstance(fired, int) and isinstance(failed, int) and fired > failed


def _health_message(body: dict[str, Any]) -> str:
    checks = body.get("checks") or {}
    down = [f"{name}: {c.get('message')}" for name, c in checks.items() if c.get("status") != "up"]
    return "; ".join(down) or str(body.get("status") or "")


async def service_state(gateway: Gateway, name: str, url: str) -> ServiceState:
    try:
        health = await gateway.health(name)
    except EdgeError as err:
        return ServiceState(name, url, up=False, reachable=False, message=f"not reachable: {err.message}")
    up = health.get("status") == "up"
    version = ""
    with contextlib.suppress(EdgeError):
        version = str((await gateway.version(name)).get("serviceVersion") or "")
    return ServiceState(
        name, url, up=up, reachable=True, version=version, message="" if up else _health_message(health)
    )


async def rules_with_counters(gateway: Gateway) -> list[dict[str, Any]]:
    rules = await gateway.rules()

    async def counters(rule: dict[str, Any]) -> dict[str, Any]:
        try:
            return {**rule, "counters": await gateway.rule_status(str(rule.get("id")))}
        except EdgeError as err:
            return {**rule, "counters": {"lastError": err.message}}

    return list(await asyncio.gather(*(counters(r) for r in rules)))


async def export_status(gateway: Gateway, url: str, timeout: float) -> ExportStatus | None:
    """An app service instance at `url`, or None when nothing answers there."""
    try:
        ping = await gateway.get_at(url, "/ping", timeout=timeout)
    except EdgeError:
        return None
    name = str(ping.get("serviceName") or url)
    version = ""
    with contextlib.suppress(EdgeError):
        version = str((await gateway.get_at(url, "/version", timeout=timeout)).get("serviceVersion") or "")
    try:
        text = await gateway.metrics_text(url, timeout=timeout * 4)
    except EdgeError as err:
        return ExportStatus(name, url, error=f"metrics not available: {err.message}", version=version)
    status = summarize_metrics(name, url, text)
    status.version = version
    return status


async def collect(
    gateway: Gateway,
    services: dict[str, str],
    app_service_urls: list[str],
    *,
    probe_timeout: float = 0.5,
) -> Snapshot:
    """One pass over the gateway: every service's health, the devices, the rules and the app services."""
    snap = Snapshot(at=time.time())
    states = asyncio.gather(*(service_state(gateway, n, u) for n, u in services.items()))
    exports = asyncio.gather(*(export_status(gateway, u, probe_timeout) for u in app_service_urls))
    devices = asyncio.ensure_future(gateway.devices())
    rules = asyncio.ensure_future(rules_with_counters(gateway)) if "rules-engine" in services else None
    snap.services = list(await states)
    snap.exports = [e for e in await exports if e is not None]
    try:
        snap.devices = await devices
    except EdgeError as err:
        snap.devices_error = err.message
    if rules is not None:
        try:
            snap.rules = await rules
        except EdgeError as err:
            snap.rules_error = err.message
    return snap
