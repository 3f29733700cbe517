"""The ProtocolDriver seam (device-sdk-go's contract, async and typed).

A driver reads and writes *raw* values for a batch of resources of one device. The SDK owns everything
else: transforms (mask → shift → base → scale → offset), mappings, min/max checks, events, autoevents,
device state and the REST/bus command API. Values a device sends on its own (subscriptions, unsolicited
reports) go through `DeviceServiceSDK.push_async_values`, given to the driver at `initialize`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgeplane_common.models import AutoEvent, Device, DeviceResource, ValueType
from edgeplane_common.models.event import now_ns

if TYPE_CHECKING:
    from edgeplane_sdk.service import DeviceServiceSDK


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


@dataclass(frozen=True, slots=True)
class DiscoveredDevice:
    """A device a driver found on the network (device-sdk-go's `DiscoveredDevice`). Provision watchers decide
    whether it is added, with which profile: their identifiers are matched against `protocols`."""

    name: str
    protocols: dict[str, dict[str, Any]]
    description: str | None = None
    labels: list[str] = field(default_factory=list)


class ProtocolDriver(ABC):
    """Implement the two handlers; every other hook defaults to a no-op (concrete on purpose: B027 is silenced
    for them). The device hooks are called in the order core-metadata's changes arrive, one at a time."""

    async def initialize(self, sdk: DeviceServiceSDK) -> None:  # noqa: B027
        """Called once before any device is added. Keep `sdk` to push values the devices send on their own
        (`sdk.push_async_values`), look devices up and log."""

    @abstractmethod
    async def handle_read_commands(
        self, device: Device, protocols: dict[str, dict[str, Any]], requests: list[CommandRequest]
    ) -> list[CommandValue]:
        """Read every requested resource of `device` (batch them: one round trip where the protocol allows);
        one raw value per request, in the requests' order."""

    @abstractmethod
    async def handle_write_commands(
        self,
        device: Device,
        protocols: dict[str, dict[str, Any]],
        requests: list[CommandRequest],
        values: list[CommandValue],
    ) -> None:
        """Write raw `values` (already reverse-transformed and range-checked) to `device`."""

    def subscribes(self, device: Device, auto_event: AutoEvent) -> bool:
        """True when the driver delivers this autoEvent's values itself (a subscription pushing through
        `sdk.push_async_values`), so the SDK does not poll it. Asked when the device's schedule starts."""
        return False

    async def validate_device(self, device: Device) -> None:  # noqa: B027
        """Raise ContractInvalid if the device's protocol properties cannot work with this driver."""

    async def add_device(self, device: Device) -> None:  # noqa: B027
        """A device was added (at start or at run time)."""

    async def update_device(self, device: Device) -> None:  # noqa: B027
        """A device changed."""

    async def remove_device(self, device: Device) -> None:  # noqa: B027
        """A device was removed; release what it held (connections shared with others stay)."""

    async def discover(self) -> list[DiscoveredDevice]:
        """Find devices on the network (POST /discovery); the SDK matches them against this service's
        provision watchers and adds those that match to core-metadata."""
        return []

    async def stop(self, force: bool = False) -> None:  # noqa: B027
        """Release connections; `force` means don't wait for in-flight requests."""
