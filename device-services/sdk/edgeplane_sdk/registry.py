"""The service's in-memory view of its devices and their profiles, kept current by system events."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeplane_common.edgex.profiles import ResolvedCommand, resolve
from edgeplane_common.errors import NotFound
from edgeplane_common.models import Device, DeviceProfile
from edgeplane_sdk.driver import CommandRequest


@dataclass(frozen=True, slots=True)
class Source:
    """A command or resource name resolved against its profile (the kernel's `resolve`), with the driver's
    request for each of its resources, built once per profile version."""

    command: ResolvedCommand
    requests: list[CommandRequest]


@dataclass
class Registry:
    devices: dict[str, Device] = field(default_factory=dict)
    profiles: dict[str, DeviceProfile] = field(default_factory=dict)
    _sources: dict[tuple[str, str], Source] = field(default_factory=dict)

    def device(self, name: str) -> Device:
        device = self.devices.get(name)
        if device is None:
            raise NotFound(f"device {name!r} is not managed by this device service")
        return device

    def profile_of(self, device: Device) -> DeviceProfile:
        profile = self.profiles.get(device.profile_name or "")
        if profile is None:
            raise NotFound(f"device {device.name!r} has no known profile {device.profile_name!r}")
        return profile

    def put_profile(self, profile: DeviceProfile) -> None:
        self.profiles[profile.name] = profile
        self._sources = {k: v for k, v in self._sources.items() if k[0] != profile.name}

    def source(self, device: Device, name: str) -> Source:
        """Resolve a device command or a device resource name (EdgeX allows both), cached per profile."""
        profile = self.profile_of(device)
        key = (profile.name, name)
        found = self._sources.get(key)
        if found is None:
            command = resolve(profile, name)
            found = Source(command, [CommandRequest.for_resource(r) for r in command.resources])
            self._sources[key] = found
        return found
