"""Commands to device services over the bus: EdgeX's command request topics, request/reply.

`edgex.device.command.request.<service>.<device>.<command>.<get|set>`; the query parameters travel in the
envelope's queryParams, a set's settings object is the payload. A device service answers with errorCode 0
and its response body, or errorCode 1 and {"message", "statusCode"}.
"""

from __future__ import annotations

from typing import Any

from edgeplane_common.bus import MessageBus, MessageEnvelope, NoResponders, Topics
from edgeplane_common.errors import CommunicationError, RemoteError, ServiceUnavailable
from edgeplane_common.logging import correlation_id
from edgeplane_common.models import Device


class BusCommandRelay:
    def __init__(self, bus: MessageBus, *, timeout: float) -> None:
        self.bus = bus
        self.timeout = timeout

    async def get(self, device: Device, command: str, params: dict[str, str]) -> dict[str, Any]:
        return await self._request(device, command, "get", MessageEnvelope(query_params=params or None))

    async def set(self, device: Device, command: str, settings: dict[str, Any], params: dict[str, str]) -> None:
        await self._request(device, command, "set", MessageEnvelope(query_params=params or None, payload=settings))

    async def _request(self, device: Device, command: str, method: str, envelope: MessageEnvelope) -> dict[str, Any]:
        cid = correlation_id.get()
        if cid:
            envelope.correlation_id = cid
        topic = Topics.command_request(device.service_name, device.name, command, method)
        try:
            reply = await self.bus.request(topic, envelope, timeout=self.timeout)
        except ServiceUnavailable as err:
            unavailable = (
                f"device service {device.service_name!r} is unavailable for {method} command {command!r} of "
                f"device {device.name!r}: {err.message}"
            )
            # "Not running" (nobody listens: known at once) stays distinguishable from "no answer in time".
            if isinstance(err, NoResponders):
                raise NoResponders(unavailable) from err
            raise ServiceUnavailable(unavailable) from err
        payload = reply.payload
        if reply.error_code:
            if isinstance(payload, dict) and isinstance(payload.get("statusCode"), int):
                raise RemoteError(str(payload.get("message") or "device service error"), payload["statusCode"])
            raise CommunicationError(
                f"device service {device.service_name!r} failed {method} command {command!r} of device "
                f"{device.name!r} without saying why: {str(payload)[:200]}"
            )
        if not isinstance(payload, dict):
            raise CommunicationError(
                f"device service {device.service_name!r} answered {method} command {command!r} of device "
                f"{device.name!r} with {type(payload).__name__}, not a JSON object"
            )
        return payload
