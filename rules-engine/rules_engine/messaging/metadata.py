"""core-metadata's system events into the rule manager: when a device or profile changes, the command actions
that target it are resolved again, so a rule stops writing a deleted device (and says so in its status) and
acts again once the device is back."""

from __future__ import annotations

from edgeplane_common.clients.system_events import MetadataChanges
from edgeplane_common.models import Device, DeviceProfile
from rules_engine.application.rules import RuleManager


class RuleTargets(MetadataChanges):
    def __init__(self, rules: RuleManager) -> None:
        self.rules = rules

    async def device_changed(self, device: Device) -> None:
        await self.rules.device_changed(device)

    async def device_deleted(self, device: Device) -> None:
        await self.rules.device_deleted(device)

    async def profile_changed(self, profile: DeviceProfile) -> None:
        await self.rules.profile_changed(profile)

    async def profile_deleted(self, profile: DeviceProfile) -> None:
        await self.rules.profile_deleted(profile)
