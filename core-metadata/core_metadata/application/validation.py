"""Device-profile rules EdgeX enforces beyond the field types."""

from __future__ import annotations

from edgeplane_common.errors import ContractInvalid
from edgeplane_common.models import DeviceProfile, ValueType


def validate_profile(profile: DeviceProfile) -> None:
    """Raise ContractInvalid naming the first broken rule."""
    resources = {}
    for res in profile.device_resources:
        if res.name in resources:
            raise ContractInvalid(f"profile {profile.name!r}: device resource name {res.name!r} is duplicated")
        props = res.properties
        if props.value_type == ValueType.BINARY and props.read_write.writable:
            raise ContractInvalid(
                f"profile {profile.name!r}: device resource {res.name!r} is Binary and cannot be written "
                f"(readWrite must be R, got {props.read_write.value})"
            )
        if props.minimum is not None and props.maximum is not None and props.minimum > props.maximum:
            raise ContractInvalid(
                f"profile {profile.name!r}: device resource {res.name!r} has minimum {props.minimum} "
                f"above maximum {props.maximum}"
            )
        resources[res.name] = res
    commands: set[str] = set()
    for cmd in profile.device_commands:
        if cmd.name in commands:
            raise ContractInvalid(f"profile {profile.name!r}: device command name {cmd.name!r} is duplicated")
        if cmd.name in resources:
            raise ContractInvalid(
                f"profile {profile.name!r}: device command {cmd.name!r} has the name of a device resource"
            )
        commands.add(cmd.name)
        if not cmd.resource_operations:
            raise ContractInvalid(f"profile {profile.name!r}: device command {cmd.name!r} has no resourceOperations")
        for op in cmd.resource_operations:
            target = resources.get(op.device_resource)
            if target is None:
                raise ContractInvalid(
                    f"profile {profile.name!r}: device command {cmd.name!r} refers to device resource "
                    f"{op.device_resource!r}, which the profile does not define"
                )
            rw = target.properties.read_write
            if (cmd.read_write.readable and not rw.readable) or (cmd.read_write.writable and not rw.writable):
                raise ContractInvalid(
                    f"profile {profile.name!r}: device command {cmd.name!r} is {cmd.read_write.value} but device "
                    f"resource {target.name!r} is {rw.value}"
                )
