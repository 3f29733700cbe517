"""What a profile offers as core commands. Pure functions.

As EdgeX (edgex-go `buildCoreCommands`): every device command that is not hidden is a core command with one
parameter per resource operation, and so is every device resource that is not hidden and not shadowed by a
device command of the same name. `get`/`set` follow readWrite. Hidden commands and resources are left out
of the listing only: they can still be called, as in EdgeX (the device service would execute them anyway).
Resolving a called command and checking its values is the kernel's (`edgeplane_common.edgex.profiles`).
"""

from __future__ import annotations

from urllib.parse import quote

from core_command.application.models import CoreCommand, CoreCommandParameter
from edgeplane_common.models import DeviceProfile, DeviceResource

COMMAND_PATH = "/api/v3/device/name/{device}/{command}"


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
