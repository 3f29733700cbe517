"""The ProtocolDriver seam (device-sdk-go's contract, async and typed).

A driver reads and writes *raw* values for a batch of resources of one device. The SDK owns everything
else: transforms (mask → shift → base → scale → offset), mappings, min/max checks, events, autoevents,
device state and the REST/bus command API.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgeplane_common.models import Device, DeviceResource, DiscoveredDevice, ValueType
from edgeplane_common.models.event import now_ns


@dataclass(frozen=True, slots=True)
class CommandRequest:
    """One resource to read or write."""

    resource_name: str
    attributes: dict[str, Any]
    value_type: ValueType
    resource: DeviceResource

    @classmethod
    def for_resource(cls, resource: DeviceResource) -> CommandRequest:
        return cls(resource.name, resource.attributes or {}, resource.properties.value_type, resource)


@dataclass(slots=True)
class CommandValue:
    """A raw value: bool, int, float, str, bytes (Binary), list (arrays) or dict/list (Object)."""

    resource_name: str
    value_type: ValueType
    value: Any
    origin: int = field(default_factory=now_ns)
    media_type: str | None = None
    tags: dict[str, Any] | None = None


class ProtocolDriver:
    """Subclass and override the handlers; lifecycle hooks default to no-ops."""

    async def initialize(self) -> None:
        """Called once before any device is added."""

    async def handle_read_commands(
        self, device: Device, protocols: dict[str, dict[str, Any]], requests: list[CommandRequest]
    ) -> list[CommandValue]:
        """Read every requested resource of `device` (batch them: one round trip where the protocol allows)."""
        raise NotImplementedError

    async def handle_write_commands(
        self,
        device: Device,
        protocols: dict[str, dict[str, Any]],
        requests: list[CommandRequest],
        values: list[CommandValue],
    ) -> None:
        """Write raw `values` (already reverse-transformed and range-checked) to `device`."""
        raise NotImplementedError

    async def validate_device(self, device: Device) -> None:
        """Raise ContractInvalid if the device's protocol properties cannot work with this driver."""

    async def add_device(self, device: Device) -> None:
        """A device was added (at start or at run time)."""

    async def update_device(self, device: Device) -> None:
        """A device changed."""

    async def remove_device(self, device: Device) -> None:
        """A device was removed; release what it held (connections shared with others stay)."""

    async def discover(self) -> list[DiscoveredDevice]:
        """Find devices on the network; the SDK matches them against provision watchers."""
        return []

    async def stop(self, force: bool = False) -> None:
        """Release connections; `force` means don't wait for in-flight requests."""
