"""Ports of the rules engine's use cases: where rules are kept, and how actions reach the world."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from edgeplane_common.models import Device, DeviceProfile


@dataclass(frozen=True)
class StoredRule:
    definition: dict[str, Any]
    """The rule as JSON (RuleDefinition.to_json_dict())."""
    running: bool


class RuleStore(Protocol):
    """Rules and whether each runs, surviving restarts (Redis)."""

    async def all(self) -> list[StoredRule]: ...

    async def get(self, rule_id: str) -> StoredRule | None: ...

    async def add(self, rule_id: str, rule: StoredRule) -> bool:
        """Store a new rule; False (nothing written) when the id is taken."""
        ...

    async def put(self, rule_id: str, rule: StoredRule) -> None: ...

    async def delete(self, rule_id: str) -> bool: ...

    async def close(self) -> None: ...


class DeviceDirectory(Protocol):
    """Devices and profiles as core-metadata knows them."""

    async def device(self, name: str) -> Device: ...

    async def profile(self, name: str) -> DeviceProfile: ...


class CommandSender(Protocol):
    """A set command to the device service that owns the device (raises what the device service refused)."""

    async def set(self, device: Device, command: str, settings: dict[str, Any], params: dict[str, str]) -> None: ...


class AlertPublisher(Protocol):
    async def publish(self, topic: str, payload: Any) -> None: ...


class HttpSender(Protocol):
    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float) -> int:
        """The response status; raises OSError-like errors (EdgeError) when no response came."""
        ...


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the epoch (processing time)."""
        ...
