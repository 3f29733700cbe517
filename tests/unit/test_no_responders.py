""" "Nobody listens" is a type (NoResponders), not a message to match: the command relay keeps it, and
core-metadata's device validation defers on it alone."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator

import pytest

from core_metadata.messaging.validation import BusDeviceValidator
from edgeplane_common.bus import MessageEnvelope, NoResponders, Topics
from edgeplane_common.bus.memory import InMemoryBus
from edgeplane_common.clients.commands import BusCommandRelay
from edgeplane_common.errors import ServiceUnavailable
from edgeplane_common.models import Device

DEVICE = Device.model_validate({"name": "pump1", "serviceName": "svc", "profileName": "Pump"})


@pytest.fixture
async def bus() -> AsyncIterator[InMemoryBus]:
    bus = InMemoryBus()
    await bus.connect()
    yield bus
    await bus.close()


async def silent(envelope: MessageEnvelope) -> None:
    return None


async def test_the_relay_raises_no_responders_when_the_service_is_not_running(bus: InMemoryBus) -> None:
    relay = BusCommandRelay(bus, timeout=5)
    with pytest.raises(NoResponders, match="device service 'svc' is unavailable for get command 'Flow'"):
        await relay.get(DEVICE, "Flow", {})


async def test_the_relay_raises_plain_service_unavailable_on_a_timeout(bus: InMemoryBus) -> None:
    await bus.subscribe(Topics.command_request_all("svc"), silent)
    relay = BusCommandRelay(bus, timeout=0.05)
    with pytest.raises(ServiceUnavailable, match=r"within 0\.05s") as info:
        await relay.get(DEVICE, "Flow", {})
    assert not isinstance(info.value, NoResponders)


async def test_validation_is_deferred_only_when_nobody_listens(bus: InMemoryBus) -> None:
    validator = BusDeviceValidator(bus, timeout=0.05)
    note = await validator.validate(DEVICE)
    assert note is not None
    assert "is not running" in note
    await bus.subscribe(Topics.device_validation("svc"), silent)
    with pytest.raises(ServiceUnavailable, match="could not validate device 'pump1'"):
        await validator.validate(DEVICE)


async def test_validation_rejects_when_told_to_even_if_nobody_listens(bus: InMemoryBus) -> None:
    validator = BusDeviceValidator(bus, timeout=0.05, reject_when_unavailable=True)
    with pytest.raises(ServiceUnavailable, match="could not validate device 'pump1'"):
        await validator.validate(DEVICE)


async def test_deferred_validation_is_logged_once_per_service_until_it_answers(
    bus: InMemoryBus, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="core_metadata.messaging.validation")
    validator = BusDeviceValidator(bus, timeout=0.5)
    other = DEVICE.model_copy(update={"service_name": "other"})
    notes = [await validator.validate(d) for d in [DEVICE] * 1000 + [other] * 3]
    assert all(n is not None and "is not running" in n for n in notes), "every item still carries its note"
    assert [r.getMessage() for r in caplog.records] == [
        "device service 'svc' is not running; the device was stored unvalidated and will be validated when the "
        "service starts (logged once until it answers)",
        "device service 'other' is not running; the device was stored unvalidated and will be validated when the "
        "service starts (logged once until it answers)",
    ]

    async def accept(envelope: MessageEnvelope) -> MessageEnvelope:
        return MessageEnvelope(payload={})

    caplog.clear()
    sub = await bus.subscribe(Topics.device_validation("svc"), accept)
    assert await validator.validate(DEVICE) is None
    assert await validator.validate(DEVICE) is None
    await sub.unsubscribe()
    assert await validator.validate(DEVICE) is not None  # down again: a new streak, logged again
    assert [r.getMessage() for r in caplog.records] == [
        "device service 'svc' validates devices again (1000 stored unvalidated while it was not running)",
        "device service 'svc' is not running; the device was stored unvalidated and will be validated when the "
        "service starts (logged once until it answers)",
    ]
