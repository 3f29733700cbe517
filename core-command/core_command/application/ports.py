"""Ports of core-command's use cases: where devices and profiles come from (the `MetadataSource` every
client of core-metadata shares), and how commands reach the device service that owns a device."""

from __future__ import annotations

from typing import Any, Protocol

from edgeplane_common.clients.cache import MetadataSource
from edgeplane_common.models import Device

__all__ = ["CommandRelay", "MetadataSource"]


class CommandRelay(Protocol):
    """Sends a command to the device service that owns the device, and waits for its answer."""

    async def get(self, device: Device, command: str, params: dict[str, str]) -> dict[str, Any]:
        """Read: the device service's reply body (apiVersion, statusCode and, unless ds-returnevent=false, event).

        Raises ServiceUnavailable when the device service does not answer in time (or is not running), and the
        device service's own error (its status and message) when it refused."""
        ...

    async def set(self, device: Device, command: str, settings: dict[str, Any], params: dict[str, str]) -> None:
        """Write `settings` ({resourceName: value}); errors as for `get`."""
        ...
