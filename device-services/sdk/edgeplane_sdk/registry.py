"""The service's in-memory view of its devices and their profiles, kept current by system events."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeplane_common.errors import NotFound
from edgeplane_common.models import Device, DeviceProfile, DeviceResource
from edgeplane_sdk.driver import CommandRequest


@dataclass(frozen=True)
class Source:
    """What one command or resource name resolves to: its resources in order, and their mappings."""

    name: str
    resources: list[DeviceResource]
    requests: list[CommandRequest]
    mappings: list[dict[str, str]]
    defaults: list[str | None]
    readable: bool
    writable: bool


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
            found = _resolve(profile, name)
            self._sources[key] = found
        return found


def _resolve(profile: DeviceProfile, name: str) -> Source:
    command = profile.command(name)
    if command is not None:
        resources, mappings, defaults = [], [], []
        for op in command.resource_operations:
            res = profile.resource(op.device_resource)
            if res is None:
                raise NotFound(f"command {name!r} refers to missing resource {op.device_resource!r}")
            resources.append(res)
            mappings.append(op.mappings or {})
            defaults.append(op.default_value)
        rw = command.read_write
        return Source(
            name,
            resources,
            [CommandRequest.for_resource(r) for r in resources],
            mappings,
            defaults,
            rw.readable,
            rw.writable,
        )
    res = profile.resource(name)
    if res is None:
        raise NotFound(f"profile {profile.name!r} has no device command or resource {name!r}")
    rw = res.properties.read_write
    return Source(
        name, [res], [CommandRequest.for_resource(res)], [{}], [res.properties.default_value], rw.readable, rw.writable
    )
