"""EdgeX v3 metadata contracts: device profiles, devices, device services, provision watchers."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, Field, ValidationError, field_validator, model_validator

from edgeplane_common.durations import parse_duration, parse_retention_duration
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


def profile_problem(profile: DeviceProfile) -> str | None:
    """The first rule `profile` breaks beyond its field types, or None. EdgeX checks these in the DTO
    (`ValidateDeviceProfileDTO`), so a request carrying such a profile is refused whole (400)."""
    resources: dict[str, DeviceResource] = {}
    for res in profile.device_resources:
        if res.name in resources:
            return f"profile {profile.name!r}: device resource name {res.name!r} is duplicated"
        props = res.properties
        if props.value_type == ValueType.BINARY and props.read_write.writable:
            return (
                f"profile {profile.name!r}: device resource {res.name!r} is Binary and cannot be written "
                f"(readWrite must be R, got {props.read_write.value})"
            )
        if props.minimum is not None and props.maximum is not None and props.minimum > props.maximum:
            return (
                f"profile {profile.name!r}: device resource {res.name!r} has minimum {props.minimum} "
                f"above maximum {props.maximum}"
            )
        resources[res.name] = res
    commands: set[str] = set()
    for cmd in profile.device_commands:
        if cmd.name in commands:
            return f"profile {profile.name!r}: device command name {cmd.name!r} is duplicated"
        if cmd.name in resources:
            return f"profile {profile.name!r}: device command {cmd.name!r} has the name of a device resource"
        commands.add(cmd.name)
        if not cmd.resource_operations:
            return f"profile {profile.name!r}: device command {cmd.name!r} has no resourceOperations"
        for op in cmd.resource_operations:
            target = resources.get(op.device_resource)
            if target is None:
                return (
                    f"profile {profile.name!r}: device command {cmd.name!r} refers to device resource "
                    f"{op.device_resource!r}, which the profile does not define"
                )
            rw = target.properties.read_write
            if (cmd.read_write.readable and not rw.readable) or (cmd.read_write.writable and not rw.writable):
                return (
                    f"profile {profile.name!r}: device command {cmd.name!r} is {cmd.read_write.value} but device "
                    f"resource {target.name!r} is {rw.value}"
                )
    return None


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
    name: ProfileName | None = None
    description: str | None = None
    manufacturer: Str | None = None
    model: Str | None = None
    labels: list[Str] | None = None

    @model_validator(mode="after")
    def _identified(self) -> UpdateDeviceProfileBasicInfo:
        _id_or_name(self, "a profile basic info")
        return self


class Retention(ContractModel):
    max_cap: int | None = None
    min_cap: int | None = None
    duration: str | None = None

    @field_validator("duration")
    @classmethod
    def _valid_duration(cls, v: str | None) -> str | None:
        # EdgeX checks it as a Go duration in the DTO: "1" (no unit) refuses the whole request.
        if v:
            try:
                parse_retention_duration(v)
            except ValueError as err:
                raise ValueError(f"retention duration: {err}") from None
        return v


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

    @field_validator("profile_name", mode="before")
    @classmethod
    def _empty_profile_is_none(cls, v: Any) -> Any:
        # EdgeX 3+ devices may have no profile yet; its JSON says so with "" as often as by leaving it out.
        return None if v == "" else v


def _id_or_name(model: ContractModel, what: str) -> None:
    """EdgeX's `required_without=Id` / `required_without=Name`: an update must say which entity it changes."""
    if not getattr(model, "id", None) and getattr(model, "name", None) is None:
        raise ValueError(f"{what} update names neither an id nor a name")


class UpdateDevice(ContractModel):
    """PATCH body: only the keys present are applied. Names are checked here, as EdgeX's DTO does, so a bad
    one refuses the whole request (400) rather than one element of the 207."""

    id: str | None = None
    name: DeviceName | None = None
    description: str | None = None
    admin_state: AdminStateField | None = None
    operating_state: OperatingStateField | None = None
    labels: list[Str] | None = None
    location: Any = None
    service_name: ServiceName | None = None
    profile_name: str | None = None
    auto_events: list[AutoEvent] | None = None
    protocols: dict[str, dict[str, Any]] | None = None
    parent: str | None = None
    tags: dict[str, Any] | None = None
    properties: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _identified(self) -> UpdateDevice:
        _id_or_name(self, "a device")
        return self


def _base_address(v: str | None) -> str | None:
    if v is not None and not v.strip():
        raise ValueError("baseAddress must not be empty")
    return v


BaseAddress = Annotated[str, AfterValidator(_base_address)]


class DeviceService(ContractModel):
    id: str | None = None
    name: ServiceName
    description: str | None = None
    labels: list[Str] = Field(default_factory=list)
    base_address: BaseAddress
    admin_state: AdminStateField = AdminState.UNLOCKED
    properties: dict[str, Any] | None = None
    created: int | None = None
    modified: int | None = None


class UpdateDeviceService(ContractModel):
    id: str | None = None
    name: ServiceName | None = None
    description: str | None = None
    labels: list[Str] | None = None
    base_address: BaseAddress | None = None
    admin_state: AdminStateField | None = None
    properties: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _identified(self) -> UpdateDeviceService:
        _id_or_name(self, "a device service")
        return self


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


class UpdateDiscoveredDevice(ContractModel):
    """The part of a watcher's discoveredDevice a PATCH changes; its autoEvents are checked as on POST."""

    profile_name: str | None = None
    admin_state: AdminStateField | None = None
    auto_events: list[AutoEvent] | None = None
    properties: dict[str, Any] | None = None


class UpdateProvisionWatcher(ContractModel):
    id: str | None = None
    name: WatcherName | None = None
    service_name: ServiceName | None = None
    labels: list[Str] | None = None
    identifiers: dict[str, Str] | None = None
    blocking_identifiers: dict[str, list[Str]] | None = None
    admin_state: AdminStateField | None = None
    discovered_device: UpdateDiscoveredDevice | None = None

    @field_validator("identifiers")
    @classmethod
    def _non_empty(cls, v: dict[str, str] | None) -> dict[str, str] | None:
        if v is not None and not v:
            raise ValueError("identifiers must name at least one protocol property to match")
        return v

    @model_validator(mode="after")
    def _identified(self) -> UpdateProvisionWatcher:
        _id_or_name(self, "a provision watcher")
        return self


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
    "UpdateDiscoveredDevice",
    "UpdateProvisionWatcher",
    "ValueType",
    "check_name",
    "describe_errors",
    "profile_problem",
]
