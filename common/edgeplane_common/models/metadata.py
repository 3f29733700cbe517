"""EdgeX v3 metadata contracts: device profiles, devices, device services, provision watchers."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, ValidationError, field_validator, model_validator

from edgeplane_common.durations import parse_duration
from edgeplane_common.models.base import ContractModel, Str
from edgeplane_common.models.enums import (
    AdminState,
    AdminStateField,
    OperatingState,
    OperatingStateField,
    ReadWrite,
    ReadWriteField,
    ValueType,
    ValueTypeField,
)
from edgeplane_common.models.names import (
    CommandName,
    DeviceName,
    ProfileName,
    ResourceName,
    ServiceName,
    SourceName,
    WatcherName,
    check_name,
    shown,
)


class ResourceProperties(ContractModel):
    value_type: ValueTypeField
    read_write: ReadWriteField
    units: Str | None = None
    minimum: float | None = None
    maximum: float | None = None
    default_value: Str | None = None
    mask: int | None = None
    shift: int | None = None
    scale: float | None = None
    offset: float | None = None
    base: float | None = None
    assertion: Str | None = None
    media_type: Str | None = None
    optional: dict[str, Any] | None = None


class DeviceResource(ContractModel):
    name: ResourceName
    description: str | None = None
    is_hidden: bool = False
    tags: dict[str, Any] | None = None
    properties: ResourceProperties
    attributes: dict[str, Any] | None = None

    @model_validator(mode="wrap")
    @classmethod
    def _name_in_errors(cls, data: Any, handler: Any) -> Any:
        # A bad valueType deep inside must name the resource it belongs to.
        try:
            return handler(data)
        except ValidationError as err:
            name = data.get("name") if isinstance(data, dict) else None
            if name is None:
                raise
            label = shown(name) if isinstance(name, str) else repr(name)
            raise ValueError(f"device resource {label}: {describe_errors(err)}") from None


class ResourceOperation(ContractModel):
    device_resource: ResourceName
    default_value: Str | None = None
    mappings: dict[str, Str] | None = None


class DeviceCommand(ContractModel):
    name: CommandName
    is_hidden: bool = False
    read_write: ReadWriteField
    resource_operations: list[ResourceOperation]
    tags: dict[str, Any] | None = None


class DeviceProfile(ContractModel):
    id: str | None = None
    name: ProfileName
    description: str | None = None
    manufacturer: Str | None = None
    model: Str | None = None
    labels: list[Str] = Field(default_factory=list)
    device_resources: list[DeviceResource] = Field(default_factory=list)
    device_commands: list[DeviceCommand] = Field(default_factory=list)
    created: int | None = None
    modified: int | None = None
    linked_device_count: int | None = None  # computed on read, never stored

    @field_validator("labels", "device_resources", "device_commands", mode="before")
    @classmethod
    def _null_is_empty(cls, v: Any) -> Any:
        return [] if v is None else v

    def resource(self, name: str) -> DeviceResource | None:
        return next((r for r in self.device_resources if r.name == name), None)

    def command(self, name: str) -> DeviceCommand | None:
        return next((c for c in self.device_commands if c.name == name), None)


class DeviceProfileBasicInfo(ContractModel):
    id: str | None = None
    name: str
    description: str | None = None
    manufacturer: Str | None = None
    model: Str | None = None
    labels: list[Str] | None = None
    linked_device_count: int | None = None


class UpdateDeviceProfileBasicInfo(ContractModel):
    id: str | None = None
    name: str | None = None
    description: str | None = None
    manufacturer: Str | None = None
    model: Str | None = None
    labels: list[Str] | None = None


class Retention(ContractModel):
    max_cap: int | None = None
    min_cap: int | None = None
    duration: str | None = None


class AutoEvent(ContractModel):
    interval: str
    on_change: bool = False
    on_change_threshold: float | None = None
    source_name: SourceName
    retention: Retention | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_resource_key(cls, data: Any) -> Any:
        # EdgeX 2.x files name the source `resource`; the spec still lists it as required.
        if isinstance(data, dict) and "resource" in data and not any(k.lower() == "sourcename" for k in data):
            data = {**data, "sourceName": data["resource"]}
        return data

    @field_validator("interval")
    @classmethod
    def _valid_interval(cls, v: str) -> str:
        if parse_duration(v) <= 0:
            raise ValueError(f"autoEvent interval {v!r} must be positive")
        return v


class Device(ContractModel):
    id: str | None = None
    name: DeviceName
    description: str | None = None
    admin_state: AdminStateField = AdminState.UNLOCKED
    operating_state: OperatingStateField = OperatingState.UP
    labels: list[Str] = Field(default_factory=list)
    location: Any = None
    service_name: ServiceName
    profile_name: ProfileName | None = None
    auto_events: list[AutoEvent] = Field(default_factory=list)
    protocols: dict[str, dict[str, Any]] = Field(default_factory=dict)
    parent: DeviceName | None = None
    tags: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None
    created: int | None = None
    modified: int | None = None

    @field_validator("labels", "auto_events", "protocols", mode="before")
    @classmethod
    def _null_is_empty(cls, v: Any, info: Any) -> Any:
        if v is None:
            return {} if info.field_name == "protocols" else []
        return v


class UpdateDevice(ContractModel):
    """PATCH body: only the keys present are applied."""

    id: str | None = None
    name: str | None = None
    description: str | None = None
    admin_state: AdminStateField | None = None
    operating_state: OperatingStateField | None = None
    labels: list[Str] | None = None
    location: Any = None
    service_name: str | None = None
    profile_name: str | None = None
    auto_events: list[AutoEvent] | None = None
    protocols: dict[str, dict[str, Any]] | None = None
    parent: str | None = None
    tags: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None


class DeviceService(ContractModel):
    id: str | None = None
    name: ServiceName
    description: str | None = None
    labels: list[Str] = Field(default_factory=list)
    base_address: str
    admin_state: AdminStateField = AdminState.UNLOCKED
    properties: dict[str, Any] | None = None
    created: int | None = None
    modified: int | None = None


class UpdateDeviceService(ContractModel):
    id: str | None = None
    name: str | None = None
    description: str | None = None
    labels: list[Str] | None = None
    base_address: str | None = None
    admin_state: AdminStateField | None = None
    properties: dict[str, Any] | None = None


class DiscoveredDevice(ContractModel):
    profile_name: ProfileName | None = None
    admin_state: AdminStateField = AdminState.UNLOCKED
    auto_events: list[AutoEvent] = Field(default_factory=list)
    properties: dict[str, Any] | None = None


class ProvisionWatcher(ContractModel):
    id: str | None = None
    name: WatcherName
    service_name: ServiceName
    labels: list[Str] = Field(default_factory=list)
    identifiers: dict[str, Str]
    blocking_identifiers: dict[str, list[Str]] | None = None
    admin_state: AdminStateField = AdminState.UNLOCKED
    discovered_device: DiscoveredDevice
    created: int | None = None
    modified: int | None = None

    @field_validator("identifiers")
    @classmethod
    def _non_empty(cls, v: dict[str, str]) -> dict[str, str]:
        if not v:
            raise ValueError("identifiers must name at least one protocol property to match")
        for key, pattern in v.items():
            try:
                re.compile(pattern)
            except re.error as err:
                raise ValueError(f"identifier {key!r} is not a valid regular expression: {err}") from None
        return v


class UpdateProvisionWatcher(ContractModel):
    id: str | None = None
    name: str | None = None
    service_name: str | None = None
    labels: list[Str] | None = None
    identifiers: dict[str, Str] | None = None
    blocking_identifiers: dict[str, list[Str]] | None = None
    admin_state: AdminStateField | None = None
    discovered_device: dict[str, Any] | None = None


class UpdateDeviceResource(ContractModel):
    name: str
    description: str | None = None
    is_hidden: bool | None = None


class UpdateDeviceCommand(ContractModel):
    name: str
    is_hidden: bool | None = None


def describe_errors(err: ValidationError) -> str:
    """One readable line per pydantic error: `path: message`, paths in the user's (camelCase) terms."""
    parts = []
    for e in err.errors(include_url=False):
        loc = ".".join(str(p) for p in e["loc"] if p not in ("function-wrap[_name_in_errors()]",))
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc else msg)
    return "; ".join(parts)


__all__ = [
    "AdminState",
    "AutoEvent",
    "Device",
    "DeviceCommand",
    "DeviceProfile",
    "DeviceProfileBasicInfo",
    "DeviceResource",
    "DeviceService",
    "DiscoveredDevice",
    "OperatingState",
    "ProvisionWatcher",
    "ReadWrite",
    "ResourceOperation",
    "ResourceProperties",
    "Retention",
    "UpdateDevice",
    "UpdateDeviceCommand",
    "UpdateDeviceProfileBasicInfo",
    "UpdateDeviceResource",
    "UpdateDeviceService",
    "UpdateProvisionWatcher",
    "ValueType",
    "check_name",
    "describe_errors",
]
