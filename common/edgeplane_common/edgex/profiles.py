"""A device command or device resource resolved against its profile, and whether a read or write of it is
allowed. Pure functions, shared by core-command (which checks before relaying) and the device SDK (which
executes), so a value core-command lets through is exactly one the device service accepts.

As EdgeX, a name is first looked up among the profile's device commands, then among its device resources.
Hidden commands and resources can still be called (they are only left out of core-command's listing).
A write value is mapped back (mappings), parsed as its valueType (Go's rules), checked against
minimum/maximum and reverse-transformed; the raw value must fit the type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from edgeplane_common.edgex.transforms import map_write, transform_write
from edgeplane_common.edgex.values import parse_value
from edgeplane_common.errors import ContractInvalid, EdgeError, NotAllowed, NotFound
from edgeplane_common.models import DeviceProfile, DeviceResource


@dataclass(frozen=True, slots=True)
class ResolvedCommand:
    """A device command or a device resource called as a command: its resources in order, with the mapping
    and default value of each (the resource operation's, or the resource's own when called by name)."""

    name: str
    resources: tuple[DeviceResource, ...]
    mappings: tuple[Mapping[str, str], ...]
    defaults: tuple[str | None, ...]
    readable: bool
    writable: bool
    hidden: bool
    kind: str
    """"device command" or "device resource" (for messages)."""


def resolve(profile: DeviceProfile, name: str) -> ResolvedCommand:
    """The device command `name` of the profile, else its device resource `name`; NotFound if neither."""
    command = profile.command(name)
    if command is not None:
        resources, mappings, defaults = [], [], []
        for op in command.resource_operations:
            res = profile.resource(op.device_resource)
            if res is None:  # core-metadata refuses such profiles; say so if one slipped through
                raise NotFound(
                    f"device command {name!r} of profile {profile.name!r} refers to missing device resource "
                    f"{op.device_resource!r}"
                )
            resources.append(res)
            mappings.append(op.mappings or {})
            defaults.append(op.default_value)
        rw = command.read_write
        return ResolvedCommand(
            name,
            tuple(resources),
            tuple(mappings),
            tuple(defaults),
            rw.readable,
            rw.writable,
            command.is_hidden,
            "device command",
        )
    res = profile.resource(name)
    if res is None:
        raise NotFound(f"profile {profile.name!r} has no device command or device resource named {name!r}")
    return resolve_resource(res)


def resolve_resource(res: DeviceResource) -> ResolvedCommand:
    """A device resource called by its name (what `resolve` gives for a name no device command has)."""
    props = res.properties
    rw = props.read_write
    return ResolvedCommand(
        res.name, (res,), ({},), (props.default_value,), rw.readable, rw.writable, res.is_hidden, "device resource"
    )


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
        write_value(device, res, mappings, given)


def write_value(device: str, res: DeviceResource, mappings: Mapping[str, str], given: Any) -> Any:
    """The raw value a driver writes for `given`: mapped back, parsed as the resource's valueType, checked
    against minimum/maximum and reverse-transformed.

    ContractInvalid naming the resource and device when the value does not fit; an EdgeError of its own kind
    when the profile's transforms cannot be reversed (not the caller's fault)."""
    value = map_write(given, mappings) if mappings and isinstance(given, str) else given
    props = res.properties
    try:
        return transform_write(parse_value(value, props.value_type), props, resource=res.name)
    except ContractInvalid as err:
        message = err.message.removeprefix(f"resource {res.name}: ")
        hint = f" (allowed: {', '.join(mappings.values())})" if mappings else ""
        where = f"resource {res.name!r} of device {device!r}"
        raise ContractInvalid(f"invalid value for {where}: {message}{hint}") from None
    except EdgeError as err:
        message = f"resource {res.name!r} of device {device!r} cannot be written: {err.message}"
        raise EdgeError(message, kind=err.kind) from None


def _what(command: ResolvedCommand) -> str:
    return f"{command.kind} {command.name!r}"
