"""Keeps the device/profile cache current from core-metadata's system events on the bus.

Subjects: `edgex.system-events.core-metadata.<device|deviceprofile>.<add|update|delete>.<owner>[.<profile>]`;
the payload is an EdgeX SystemEvent whose `details` is the whole entity after the change (before it, for a
delete). One subscription per kind; NATS delivers one subscription's messages in order, so the last event
for a name is the one that sticks.
"""

from __future__ import annotations

import logging
from typing import Any

from core_command.application.cache import CachedMetadata
from edgeplane_common.bus import MessageBus, MessageEnvelope, Subscription, escape, subject
from edgeplane_common.models import Device, DeviceProfile, SystemEvent
from edgeplane_common.models.system_event import SystemEventAction

log = logging.getLogger(__name__)
SOURCE = "core-metadata"


def system_events_of(kind: str) -> str:
    return subject("edgex", "system-events", escape(SOURCE), kind, ">")


class SystemEventListener:
    def __init__(self, bus: MessageBus, cache: CachedMetadata) -> None:
        self.bus = bus
        self.cache = cache
        self._subs: list[Subscription] = []

    async def start(self) -> None:
        self._subs = [
            await self.bus.subscribe(system_events_of("device"), self._on_device),
            await self.bus.subscribe(system_events_of("deviceprofile"), self._on_profile),
        ]
        # Anything cached before we listened may have changed unseen.
        self.cache.clear()

    async def stop(self) -> None:
        subs, self._subs = self._subs, []
        for sub in subs:
            await sub.unsubscribe()

    async def _on_device(self, env: MessageEnvelope) -> None:
        parsed = self._parse(env, Device)
        if parsed is not None:
            action, device = parsed
            if action is SystemEventAction.DELETE:
                self.cache.device_deleted(device.name)
            else:
                self.cache.device_changed(device)

    async def _on_profile(self, env: MessageEnvelope) -> None:
        parsed = self._parse(env, DeviceProfile)
        if parsed is not None:
            action, profile = parsed
            if action is SystemEventAction.DELETE:
                self.cache.profile_deleted(profile.name)
            else:
                self.cache.profile_changed(profile)

    def _parse(self, env: MessageEnvelope, model: type[Any]) -> tuple[SystemEventAction, Any] | None:
        try:
            event = SystemEvent.model_validate(env.payload)
            return event.action, model.model_validate(event.details)
        except Exception as err:
            # Something changed and we cannot tell what: forget everything rather than serve stale data.
            log.warning("unreadable system event on %s (%s); cache cleared", env.received_topic, err)
            self.cache.clear()
            return None
