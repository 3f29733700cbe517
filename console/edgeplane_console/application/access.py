"""What a user may do in the console, decided by the services' own rules: each service's OpenAPI document
(its `x-edgeplane-role` declarations) read into the same `RoutePolicy` its middleware enforces with. The
console only hides what would be refused anyway; the services still check every call.

The console names its actions by the route each one calls (ACTIONS); which role a route needs is never
written here."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from edgeplane_common.auth.roles import RoutePolicy
from edgeplane_common.errors import EdgeError

log = logging.getLogger(__name__)

ACTIONS: dict[str, tuple[str, str, str]] = {
    # action: (service, method, a path of the route it calls)
    "device.add": ("core-metadata", "POST", "/api/v3/device"),
    "device.edit": ("core-metadata", "PATCH", "/api/v3/device"),  # also lock/unlock (adminState)
    "device.delete": ("core-metadata", "DELETE", "/api/v3/device/name/_"),
    "command.read": ("core-command", "GET", "/api/v3/device/name/_/_"),
    "command.write": ("core-command", "PUT", "/api/v3/device/name/_/_"),
    "profile.upload": ("core-metadata", "POST", "/api/v3/deviceprofile/uploadfile"),
    "profile.replace": ("core-metadata", "PUT", "/api/v3/deviceprofile/uploadfile"),
    "profile.delete": ("core-metadata", "DELETE", "/api/v3/deviceprofile/name/_"),
    "deviceservice.add": ("core-metadata", "POST", "/api/v3/deviceservice"),
    "deviceservice.edit": ("core-metadata", "PATCH", "/api/v3/deviceservice"),
    "deviceservice.delete": ("core-metadata", "DELETE", "/api/v3/deviceservice/name/_"),
    "provisionwatcher.add": ("core-metadata", "POST", "/api/v3/provisionwatcher"),
    "provisionwatcher.edit": ("core-metadata", "PATCH", "/api/v3/provisionwatcher"),
    "provisionwatcher.delete": ("core-metadata", "DELETE", "/api/v3/provisionwatcher/name/_"),
    "rule.create": ("rules-engine", "POST", "/api/v3/rule"),
    "rule.edit": ("rules-engine", "PUT", "/api/v3/rule/id/_"),
    "rule.delete": ("rules-engine", "DELETE", "/api/v3/rule/id/_"),
    "rule.start": ("rules-engine", "POST", "/api/v3/rule/id/_/start"),
    "rule.stop": ("rules-engine", "POST", "/api/v3/rule/id/_/stop"),
}


@dataclass(frozen=True)
class Capabilities:
    """The actions (of ACTIONS) one user may take."""

    allowed: frozenset[str]

    def __call__(self, action: str) -> bool:
        if action not in ACTIONS:
            raise KeyError(f"unknown console action {action!r}")
        return action in self.allowed

    @classmethod
    def everything(cls) -> Capabilities:
        """Open mode: no roles, every control shown."""
        return cls(frozenset(ACTIONS))


OpenApiFetch = Callable[[str], Awaitable[dict[str, Any]]]
"""The OpenAPI document of a service, by name."""


class Access:
    """Route policies of the services, read from their OpenAPI documents once each (asked again while a
    service cannot be: until then its routes get the middleware's defaults, GET viewer and the rest admin)."""

    def __init__(self) -> None:
        self._policies: dict[str, RoutePolicy] = {}

    def policy(self, service: str) -> RoutePolicy | None:
        return self._policies.get(service)

    async def load(self, fetch: OpenApiFetch) -> None:
        for service in sorted({s for s, _, _ in ACTIONS.values()} - set(self._policies)):
            try:
                document = await fetch(service)
            except EdgeError as err:
                log.info("cannot read %s's route roles yet: %s", service, err.message)
                continue
            policy = RoutePolicy()
            policy.load_openapi(document)
            self._policies[service] = policy

    def capabilities(self, role: str) -> Capabilities:
        allowed = set()
        for action, (service, method, path) in ACTIONS.items():
            policy = self._policies.get(service) or RoutePolicy()
            if policy.allows(role, method, path):
                allowed.add(action)
        return Capabilities(frozenset(allowed))
