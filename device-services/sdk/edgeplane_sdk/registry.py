"""The service's in-memory view of its devices and their profiles, kept current by system events."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgeplane_common.edgex.profiles import ResolvedCommand, resolve, resolve_resource
from edgeplane_common.errors import NotFound
from edgeplane_common.models import Device, DeviceProfile, DeviceResource
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
    _resources: dict[str, dict[str, DeviceResource]] = field(default_factory=dict)  # per profile, by name

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
        self._resources.pop(profile.name, None)

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

    def resource_source(self, device: Device, name: str) -> Source:
        """What `source` gives for `name`, built anew and not cached when `name` is a device resource (and no
        device command): for values a driver pushes one event per resource (a subscription's data changes),
        so that a profile of many resources does not keep a resolved source, specs and templates for each."""
        profile = self.profile_of(device)
        resources = self._resources.get(profile.name)
        if resources is None:
            resources = self._resources[profile.name] = {r.name: r for r in profile.device_resources}
        res = resources.get(name)
        if res is None or profile.command(name) is not None:
            return self.source(device, name)
        return Source(resolve_resource(res), [CommandRequest.for_resource(res)])
