"""core-command's use cases: list the commands devices offer, and relay reads and writes to the owning
device service after checking everything core-metadata already tells us.

Checks run in the order the device SDK runs them, so core-command answers what the device service would:
unknown device (404), LOCKED or DOWN device (423), unknown command (404), wrong direction (405), bad value
(400). Only then is anything sent; the device service's own refusals come back with its status and message.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from core_command.application.models import DeviceCoreCommand
from core_command.application.ports import CommandRelay, MetadataSource
from core_command.application.profile_commands import core_commands
from edgeplane_common.edgex.profiles import ResolvedCommand, check_readable, check_settings, check_writable, resolve
from edgeplane_common.edgex.states import check_commandable
from edgeplane_common.edgex.values import parse_flag
from edgeplane_common.errors import ContractInvalid, NotFound
from edgeplane_common.models import Device, DeviceProfile

log = logging.getLogger(__name__)

PUSH_EVENT = "ds-pushevent"
RETURN_EVENT = "ds-returnevent"
_FLAGS = (PUSH_EVENT, RETURN_EVENT)


def normalize_params(params: dict[str, str]) -> dict[str, str]:
    """Query parameters relayed to the device service; ds-pushevent / ds-returnevent must be true or false
    (the kernel's `parse_flag`: any case), as EdgeX checks, and are relayed as "true" or "false"."""
    out = dict(params)
    for key in _FLAGS:
        value = out.get(key)
        if value is None:
            continue
        flag = parse_flag(value)
        if flag is None:
            raise ContractInvalid(f"query parameter {key}={value!r} is invalid: use true or false")
        out[key] = "true" if flag else "false"
    return out


@dataclass
class _Resolved:
    """Per-profile memo of resolved commands; dropped as soon as the profile object is replaced."""

    profile: DeviceProfile
    commands: dict[str, ResolvedCommand] = field(default_factory=dict)


class CommandManager:
    def __init__(self, metadata: MetadataSource, relay: CommandRelay, *, service_url: str) -> None:
        self.metadata = metadata
        self.relay = relay
        self.service_url = service_url
        self._resolved: dict[str, _Resolved] = {}

    # -- listing ---------------------------------------------------------------------------------------
    async def device_commands(self, name: str) -> DeviceCoreCommand:
        device = await self.metadata.device(name)
        profile = await self._profile_or_none(device)
        return self._describe(device, profile)

    async def all_commands(self, offset: int, limit: int) -> tuple[list[DeviceCoreCommand], int]:
        devices, total = await self.metadata.devices(offset, limit)
        wanted = sorted({d.profile_name for d in devices if d.profile_name})
        found = await asyncio.gather(*(self._profile_by_name(p) for p in wanted))
        profiles = dict(zip(wanted, found, strict=True))
        return [self._describe(d, profiles.get(d.profile_name or "")) for d in devices], total

    # -- commands --------------------------------------------------------------------------------------
    async def read(self, device_name: str, command: str, params: dict[str, str]) -> dict[str, Any]:
        params = normalize_params(params)
        device, cmd = await self._target(device_name, command)
        check_readable(device.name, cmd)
        return await self.relay.get(device, command, params)

    async def write(self, device_name: str, command: str, settings: Any, params: dict[str, str]) -> None:
        device, cmd = await self._target(device_name, command)
        check_writable(device.name, cmd)
        check_settings(device.name, cmd, settings)
        await self.relay.set(device, command, settings, params)

    # -- internals -------------------------------------------------------------------------------------
    async def _target(self, device_name: str, command: str) -> tuple[Device, ResolvedCommand]:
        device = await self.metadata.device(device_name)
        check_commandable(device)
        if not device.profile_name:
            raise NotFound(f"device {device.name!r} has no device profile, so it has no commands")
        try:
            profile = await self.metadata.profile(device.profile_name)
        except NotFound:
            raise NotFound(f"device profile {device.profile_name!r} of device {device.name!r} does not exist") from None
        return device, self._resolve(device, profile, command)

    def _resolve(self, device: Device, profile: DeviceProfile, command: str) -> ResolvedCommand:
        memo = self._resolved.get(profile.name)
        if memo is None or memo.profile is not profile:
            memo = self._resolved[profile.name] = _Resolved(profile)
        cmd = memo.commands.get(command)
        if cmd is None:
            try:
                cmd = resolve(profile, command)
            except NotFound as err:
                raise NotFound(f"device {device.name!r}: {err.message}") from None
            memo.commands[command] = cmd
        return cmd

    async def _profile_or_none(self, device: Device) -> DeviceProfile | None:
        return await self._profile_by_name(device.profile_name) if device.profile_name else None

    async def _profile_by_name(self, name: str) -> DeviceProfile | None:
        try:
            return await self.metadata.profile(name)
        except NotFound:
            log.warning("device profile %r does not exist; its devices are listed without commands", name)
            return None

    def _describe(self, device: Device, profile: DeviceProfile | None) -> DeviceCoreCommand:
        commands = core_commands(device.name, profile, self.service_url) if profile else []
        return DeviceCoreCommand(
            device_name=device.name, profile_name=device.profile_name or "", core_commands=commands
        )
