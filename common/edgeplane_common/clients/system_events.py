"""core-metadata's system events, decoded once, for every service that keeps a view of metadata.

Subjects: `edgex.system-events.core-metadata.<device|deviceprofile>.<add|update|delete>.<owner>[.<profile>]`
(`Topics.system_event`); the payload is an EdgeX `SystemEvent` whose `details` is the whole entity after the
change (before it, for a delete). `decode_system_event` is the one parser; `SystemEventListener` subscribes
and hands typed entities to a `MetadataChanges` (core-command's cache through `CacheUpdater`, the device
SDK's runtime directly). One subscription per kind; NATS delivers one subscription's messages in order, so
the last event for a name is the one that sticks.
"""

from __future__ import annotations

import logging

from pydantic import ValidationError

from edgeplane_common.bus import MessageBus, MessageEnvelope, Subscription, Topics
from edgeplane_common.clients.cache import CachedMetadata
from edgeplane_common.errors import ContractInvalid
from edgeplane_common.models import Device, DeviceProfile, DeviceService, ProvisionWatcher, SystemEvent
from edgeplane_common.models.metadata import describe_errors
from edgeplane_common.models.system_event import SystemEventAction, SystemEventType

log = logging.getLogger(__name__)

Entity = Device | DeviceProfile | DeviceService | ProvisionWatcher
_MODELS: dict[SystemEventType, type[Device] | type[DeviceProfile] | type[DeviceService] | type[ProvisionWatcher]] = {
    SystemEventType.DEVICE: Device,
    SystemEventType.DEVICE_PROFILE: DeviceProfile,
    SystemEventType.DEVICE_SERVICE: DeviceService,
    SystemEventType.PROVISION_WATCHER: ProvisionWatcher,
}


def decode_system_event(payload: object) -> tuple[SystemEvent, Entity]:
    """The event and the entity in its details, typed by the event's type; ContractInvalid if either is not
    what EdgeX sends."""
    try:
        event = SystemEvent.model_validate(payload)
        return event, _MODELS[event.type].model_validate(event.details)
    except ValidationError as err:
        raise ContractInvalid(f"not an EdgeX system event: {describe_errors(err)}") from None


class MetadataChanges:
    """What a `SystemEventListener` reports, in the order events arrive; override the hooks you need."""

    async def subscribed(self) -> None:
        """The subscriptions are in place: anything learnt before may have changed unseen."""

    async def device_changed(self, device: Device) -> None:
        """A device was added or updated (adminState and operatingState changes included)."""

    async def device_deleted(self, device: Device) -> None:
        """A device was deleted (`device` as it was)."""

    async def profile_changed(self, profile: DeviceProfile) -> None:
        """A profile was added or updated."""

    async def profile_deleted(self, profile: DeviceProfile) -> None:
        """A profile was deleted."""

    async def unreadable(self, topic: str | None, err: Exception) -> None:
        """An event that could not be decoded: something changed, and we cannot tell what."""


class SystemEventListener:
    """Subscribes to core-metadata's device and profile events and reports them to `changes`. With `owner`,
    only the devices of that device service are reported (the subject filters them)."""

    def __init__(self, bus: MessageBus, changes: MetadataChanges, *, owner: str | None = None) -> None:
        self.bus = bus
        self.changes = changes
        self.owner = owner
        self._subs: list[Subscription] = []

    async def start(self) -> None:
        self._subs = [
            await self.bus.subscribe(Topics.system_events_of("device", owner=self.owner), self._on_event),
            await self.bus.subscribe(Topics.system_events_of("deviceprofile"), self._on_event),
        ]
        await self.changes.subscribed()

    async def stop(self) -> None:
        subs, self._subs = self._subs, []
        for sub in subs:
            await sub.unsubscribe()

    async def _on_event(self, env: MessageEnvelope) -> None:
        try:
            event, entity = decode_system_event(env.payload)
        except ContractInvalid as err:
            log.warning("unreadable system event on %s: %s", env.received_topic, err)
            await self.changes.unreadable(env.received_topic, err)
            return
        deleted = event.action is SystemEventAction.DELETE
        if isinstance(entity, Device):
            await (self.changes.device_deleted(entity) if deleted else self.changes.device_changed(entity))
        elif isinstance(entity, DeviceProfile):
            await (self.changes.profile_deleted(entity) if deleted else self.changes.profile_changed(entity))


class CacheUpdater(MetadataChanges):
    """Keeps a `CachedMetadata` current: every change is applied, and anything uncertain clears it."""

    def __init__(self, cache: CachedMetadata) -> None:
        self.cache = cache

    async def subscribed(self) -> None:
        self.cache.clear()

    async def device_changed(self, device: Device) -> None:
        self.cache.device_changed(device)

    async def device_deleted(self, device: Device) -> None:
        self.cache.device_deleted(device.name)

    async def profile_changed(self, profile: DeviceProfile) -> None:
        self.cache.profile_changed(profile)

    async def profile_deleted(self, profile: DeviceProfile) -> None:
        self.cache.profile_deleted(profile.name)

    async def unreadable(self, topic: str | None, err: Exception) -> None:
        # Rather forget everything than serve stale data.
        self.cache.clear()
