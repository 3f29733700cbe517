"""The one parser of core-metadata's system events (edgeplane_common.clients.system_events)."""

from __future__ import annotations

import pytest

from core_metadata.application.ports import Kind
from core_metadata.messaging.system_events import system_event_topic
from edgeplane_common.bus import Topics
from edgeplane_common.bus.memory import subject_matches
from edgeplane_common.clients import decode_system_event
from edgeplane_common.errors import ContractInvalid
from edgeplane_common.models import Device, DeviceProfile, SystemEvent, SystemEventAction, SystemEventType


def event(type_: SystemEventType, details: object, action: SystemEventAction = SystemEventAction.UPDATE) -> object:
    return SystemEvent(type=type_, action=action, source="core-metadata", owner="svc", details=details).to_json_dict()


def test_the_entity_is_typed_by_the_event_type() -> None:
    device = Device(name="d1", service_name="svc", profile_name="P")
    got, entity = decode_system_event(event(SystemEventType.DEVICE, device.to_json_dict(), SystemEventAction.DELETE))
    assert got.action is SystemEventAction.DELETE
    assert entity == device
    _, profile = decode_system_event(event(SystemEventType.DEVICE_PROFILE, {"name": "P"}))
    assert isinstance(profile, DeviceProfile)


@pytest.mark.parametrize(
    "payload",
    [
        {"x": 1},
        None,
        event(SystemEventType.DEVICE, {"name": "d1"}),  # a device without its service
        {"type": "device", "action": "rename", "source": "core-metadata", "owner": "svc", "details": {}},
    ],
)
def test_anything_else_is_contract_invalid(payload: object) -> None:
    with pytest.raises(ContractInvalid, match="not an EdgeX system event"):
        decode_system_event(payload)


def test_the_listeners_subjects_cover_what_core_metadata_publishes() -> None:
    device = Device(name="d.1", service_name="svc.a", profile_name="P.1")
    topic, _ = system_event_topic(Kind.DEVICE, SystemEventAction.ADD, device)
    assert subject_matches(Topics.system_events_of("device", owner="svc.a"), topic)
    assert subject_matches(Topics.system_events_of("device"), topic)
    topic, _ = system_event_topic(Kind.PROFILE, SystemEventAction.DELETE, DeviceProfile(name="P.1"))
    assert subject_matches(Topics.system_events_of("deviceprofile"), topic)
