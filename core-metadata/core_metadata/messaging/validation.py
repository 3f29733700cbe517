"""Asks the owning device service to validate a device, over bus request/reply."""

from __future__ import annotations

import logging

from edgeplane_common.bus import MessageBus, MessageEnvelope, NoResponders, Topics
from edgeplane_common.errors import ContractInvalid, ServiceUnavailable
from edgeplane_common.models import Device

log = logging.getLogger(__name__)


class BusDeviceValidator:
    """EdgeX hangs and answers 503 when the device service is down (edgex-go #4470). NATS tells us at
    once that nobody listens, so by default we accept the device and say validation was deferred: the
    device service validates its devices when it starts. `reject_when_unavailable` restores 503."""

    def __init__(self, bus: MessageBus, *, timeout: float, reject_when_unavailable: bool = False) -> None:
        self.bus = bus
        self.timeout = timeout
        self.reject_when_unavailable = reject_when_unavailable

    async def validate(self, device: Device) -> str | None:
        topic = Topics.device_validation(device.service_name)
        try:
            reply = await self.bus.request(topic, MessageEnvelope(payload=device.to_json_dict()), timeout=self.timeout)
        except ServiceUnavailable as err:
            if isinstance(err, NoResponders) and not self.reject_when_unavailable:
                note = (
                    f"device service {device.service_name!r} is not running; the device was stored "
                    "unvalidated and will be validated when the service starts"
                )
                log.info(note)
                return note
            raise ServiceUnavailable(
                f"device service {device.service_name!r} could not validate device {device.name!r}: {err.message}"
            ) from err
        if reply.error_code:
            payload = reply.payload if isinstance(reply.payload, dict) else {}
            reason = payload.get("message") or str(reply.payload)
            raise ContractInvalid(f"device service {device.service_name!r} rejected device {device.name!r}: {reason}")
        return None
