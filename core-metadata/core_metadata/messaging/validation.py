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
    device service validates its devices when it starts. `reject_when_unavailable` restores 503.

    Each deferred item's response carries the note; the log says it once per service until that service
    answers again (a batch of 17,000 devices once wrote 17,000 identical lines, on the event loop)."""

    def __init__(self, bus: MessageBus, *, timeout: float, reject_when_unavailable: bool = False) -> None:
        self.bus = bus
        self.timeout = timeout
        self.reject_when_unavailable = reject_when_unavailable
        self._deferring: dict[str, int] = {}
        """Services found not running, with the devices stored unvalidated for each since."""

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
                deferred = self._deferring.get(device.service_name, 0)
                if not deferred:
                    log.info("%s (logged once until it answers)", note)
                self._deferring[device.service_name] = deferred + 1
                return note
            raise ServiceUnavailable(
                f"device service {device.service_name!r} could not validate device {device.name!r}: {err.message}"
            ) from err
        deferred = self._deferring.pop(device.service_name, 0)
        if deferred:
            log.info(
                "device service %r validates devices again (%d stored unvalidated while it was not running)",
                device.service_name,
                deferred,
            )
        if reply.error_code:
            payload = reply.payload if isinstance(reply.payload, dict) else {}
            reason = payload.get("message") or str(reply.payload)
            raise ContractInvalid(f"device service {device.service_name!r} rejected device {device.name!r}: {reason}")
        return None
