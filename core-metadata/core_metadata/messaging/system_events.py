"""Publishes EdgeX system events for every metadata change, so device services react at run time."""

from __future__ import annotations

import logging

from core_metadata.application.ports import Entity, Kind
from edgeplane_common.bus import MessageBus, MessageEnvelope, Topics
from edgeplane_common.models import Device, ProvisionWatcher, SystemEvent
from edgeplane_common.models.system_event import SystemEventAction, SystemEventType

log = logging.getLogger(__name__)
SOURCE = "core-metadata"


def system_event_topic(kind: Kind, action: SystemEventAction, entity: Entity) -> tuple[str, str]:
    """(subject, owner). Devices and watchers: owner = their device service, then the profile name.
    Device services: owner = the service itself. Profiles: owner = core-metadata, then the profile name."""
    if isinstance(entity, Device):
        owner, profile = entity.service_name, entity.profile_name
    elif isinstance(entity, ProvisionWatcher):
        owner, profile = entity.service_name, entity.discovered_device.profile_name
    elif kind is Kind.SERVICE:
        owner, profile = entity.name, None
    else:
        owner, profile = SOURCE, entity.name
    return Topics.system_event(SOURCE, kind.value, action.value, owner, profile), owner


class BusSystemEventPublisher:
    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus

    async def publish(self, kind: Kind, action: SystemEventAction, entity: Entity) -> None:
        topic, owner = system_event_topic(kind, action, entity)
        event = SystemEvent(
            type=SystemEventType(kind.value),
            action=action,
            source=SOURCE,
            owner=owner,
            details=entity.to_json_dict(),
        )
        try:
            await self.bus.publish(topic, MessageEnvelope(payload=event.to_json_dict()))
        except Exception as err:  # the change is stored; a lost notification must not fail the request
            log.warning("could not publish system event on %s: %s", topic, err)
