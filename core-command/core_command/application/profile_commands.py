"""What a profile offers as commands, and whether a write's values fit the profile. Pure functions.

As EdgeX (edgex-go `buildCoreCommands`): every device command that is not hidden is a core command with one
parameter per resource operation, and so is every device resource that is not hidden and not shadowed by a
device command of the same name. `get`/`set` follow readWrite. Hidden commands and resources are left out
of the listing only: they can still be called, as in EdgeX (the device service would execute them anyway).

The value check reuses the device SDK's parsing and transforms (`edgeplane_sdk.values`, `.transforms`), so a
value core-command lets through is exactly one the device service accepts: the valueType parse (Go's
rules), minimum/maximum, and the reverse transforms (the raw value must fit the type). Mappings are applied
first, as the device service does.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from core_command.application.models import CoreCommand, CoreCommandParameter
from edgeplane_common.errors import ContractInvalid, EdgeError, NotAllowed, NotFound
from edgeplane_common.models import DeviceProfile, DeviceResource
from edgeplane_sdk.transforms import map_write, transform_write
from edgeplane_sdk.values import parse_value

COMMAND_PATH = "/api/v3/device/name/{device}/{command}"


@dataclass(frozen=True, slots=True)
class ResolvedCommand:
    """A device command or a device resource called as a command: its resources, in order."""

    name: str
    resources: tuple[DeviceResource, ...]
    mappings: tuple[Mapping[str, str], ...]
    readable: bool
    writable: bool
    hidden: bool
    kind: str
    """"device command" or "device resource" (for messages)."""


def resolve(profile: DeviceProfile, name: str) -> ResolvedCommand:
    """The device command `name` of the profile, else its device resource `name`; NotFound if neither."""
    command = profile.command(name)
    if command is not None:
        resources, mappings = [], []
        for op in command.resource_operations:
            res = profile.resource(op.device_resource)
            if res is None:  # core-metadata refuses such profiles; say so if one slipped through
                raise NotFound(
                    f"device command {name!r} of profile {profile.name!r} refers to missing device resource "
                    f"{op.device_resource!r}"
                )
            resources.append(res)
            mappings.append(op.mappings or {})
        rw = command.read_write
        return ResolvedCommand(
            name, tuple(resources), tuple(mappings), rw.readable, rw.writable, command.is_hidden, "device command"
        )
    res = profile.resource(name)
    if res is None:
        raise NotFound(f"profile {profile.name!r} has no device command or device resource named {name!r}")
    rw = res.properties.read_write
    return ResolvedCommand(name, (res,), ({},), rw.readable, rw.writable, res.is_hidden, "device resource")


def command_path(device: str, command: str) -> str:
    return COMMAND_PATH.format(device=quote(device, safe=""), command=quote(command, safe=""))


def core_commands(device: str, profile: DeviceProfile, url: str) -> list[CoreCommand]:
    """The commands `device` offers through core-command: device commands first, then device resources, each in
    profile order (EdgeX returns them in Go map order, i.e. unordered)."""
    out: list[CoreCommand] = []
    names: set[str] = set()

    def add(name: str, readable: bool, writable: bool, resources: list[DeviceResource]) -> None:
        names.add(name)
        out.append(
            CoreCommand(
                name=name,
                get=True if readable else None,
                set=True if writable else None,
                path=command_path(device, name),
                url=url,
                parameters=[
                    CoreCommandParameter(resource_name=r.name, value_type=r.properties.value_type) for r in resources
                ],
            )
        )

    for command in profile.device_commands:
        if command.is_hidden:
            continue
        resources = [r for op in command.resource_operations if (r := profile.resource(op.device_resource))]
        add(command.name, command.read_write.readable, command.read_write.writable, resources)
    for res in profile.device_resources:
        if res.is_hidden or res.name in names:
            continue
        rw = res.properties.read_write
        add(res.name, rw.readable, rw.writable, [res])
    return out


def check_readable(device: str, command: ResolvedCommand) -> None:
    if not command.readable:
        raise NotAllowed(f"{_what(command)} of device {device!r} is write-only: it cannot be read (GET)")


def check_writable(device: str, command: ResolvedCommand) -> None:
    if not command.writable:
        raise NotAllowed(f"{_what(command)} of device {device!r} is read-only: it cannot be written (PUT)")


def check_settings(device: str, command: ResolvedCommand, settings: Any) -> None:
    """ContractInvalid unless `settings` is a non-empty {resourceName: value} object whose every key names a
    resource of the command and whose every value fits that resource (type, range, transforms).

    A command of one resource also takes its value under the command's name (as the device SDK does). Keys
    that name nothing are refused rather than ignored: a misspelt key would otherwise write defaults only."""
    names = [r.name for r in command.resources]
    example = f'{{"{names[0]}": "<value>"}}' if names else "{}"
    if not isinstance(settings, dict):
        raise ContractInvalid(f"the request body must be a JSON object of resource names to values, e.g. {example}")
    if not settings:
        raise ContractInvalid(f"no values given for {_what(command)}; send e.g. {example}")
    known = set(names)
    if len(names) == 1:
        known.add(command.name)
    unknown = sorted(str(k) for k in settings if k not in known)
    if unknown:
        raise ContractInvalid(
            f"{_what(command)} of device {device!r} has no resource {', '.join(map(repr, unknown))}; "
            f"it writes {', '.join(names)}"
        )
    for res, mappings in zip(command.resources, command.mappings, strict=True):
        if res.name in settings:
            given = settings[res.name]
        elif len(names) == 1 and command.name in settings:
            given = settings[command.name]
        else:
            continue
        _check_value(device, res, mappings, given)


def _check_value(device: str, res: DeviceResource, mappings: Mapping[str, str], given: Any) -> None:
    value = map_write(given, mappings) if mappings and isinstance(given, str) else given
    props = res.properties
    try:
        transform_write(parse_value(value, props.value_type), props, resource=res.name)
    except ContractInvalid as err:
        message = err.message.removeprefix(f"resource {res.name}: ")
        hint = f" (allowed: {', '.join(mappings.values())})" if mappings else ""
        where = f"resource {res.name!r} of device {device!r}"
        raise ContractInvalid(f"invalid value for {where}: {message}{hint}") from None
    except EdgeError as err:  # the profile's transforms cannot be reversed: not the caller's fault
        message = f"resource {res.name!r} of device {device!r} cannot be written: {err.message}"
        raise EdgeError(message, kind=err.kind) from None


def _what(command: ResolvedCommand) -> str:
    return f"{command.kind} {command.name!r}"
