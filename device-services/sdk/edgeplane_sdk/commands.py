"""Reading and writing devices: the driver's raw values → EdgeX readings, and settings → raw values.

Shared by the REST API, bus command requests and autoevents, so all three behave the same: LOCKED → 423,
failures counted towards marking the device DOWN, one event per command with all its readings.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from edgeplane_common.errors import ContractInvalid, EdgeError, Locked, NotAllowed, ServerError
from edgeplane_common.models import AdminState, Device, Event, OperatingState, Reading, ValueType
from edgeplane_common.models.event import now_ns
from edgeplane_sdk.driver import CommandValue, ProtocolDriver
from edgeplane_sdk.registry import Registry, Source
from edgeplane_sdk.transforms import TransformError, map_read, map_write, transform_read, transform_write
from edgeplane_sdk.values import format_value, parse_value

log = logging.getLogger(__name__)

StateSetter = Callable[[str, OperatingState], Awaitable[None]]


class HealthTracker:
    """Counts consecutive failures per device; marks it DOWN after N and UP on the first success.
    Logs the failure once and the recovery once, not every poll."""

    def __init__(self, set_state: StateSetter, down_after: int) -> None:
        self.set_state = set_state
        self.down_after = down_after
        self.failures: dict[str, int] = {}

    async def failed(self, device: Device, err: Exception) -> None:
        if getattr(err, "device_alive", False):
            # The device answered (e.g. a Modbus exception): refused, but reachable.
            await self.succeeded(device)
            return
        n = self.failures.get(device.name, 0) + 1
        self.failures[device.name] = n
        if n == 1:
            log.warning("device %s: %s", device.name, err)
        if n == self.down_after and device.operating_state is not OperatingState.DOWN:
            log.warning("device %s marked DOWN after %d consecutive failures", device.name, n)
            await self._set(device, OperatingState.DOWN)

    async def succeeded(self, device: Device) -> None:
        if self.failures.pop(device.name, 0) or device.operating_state is OperatingState.DOWN:
            if device.operating_state is OperatingState.DOWN:
                log.info("device %s recovered; marked UP", device.name)
                await self._set(device, OperatingState.UP)
            else:
                log.info("device %s recovered", device.name)

    async def _set(self, device: Device, state: OperatingState) -> None:
        try:
            await self.set_state(device.name, state)
        except EdgeError as err:
            log.warning("could not set device %s %s in core-metadata: %s", device.name, state.value, err)


def _reading(device: Device, profile_name: str, source: Source, i: int, cv: CommandValue) -> Reading:
    res = source.resources[i]
    props = res.properties
    vt = props.value_type
    common: dict[str, Any] = {
        "origin": cv.origin,
        "device_name": device.name,
        "resource_name": res.name,
        "profile_name": profile_name,
        "value_type": vt,
        "units": props.units,
        "tags": cv.tags or res.tags,
    }
    if vt is ValueType.BINARY:
        return Reading(**common, binary_value=cv.value, media_type=cv.media_type or props.media_type)
    if vt is ValueType.OBJECT or vt is ValueType.OBJECT_ARRAY:
        return Reading(**common, object_value=cv.value)
    try:
        text = format_value(transform_read(cv.value, props, resource=res.name), vt)
    except TransformError as err:
        # EdgeX publishes the failure as a String reading ("overflow", "NaN") instead of dropping the event.
        log.warning("device %s resource %s: %s", device.name, res.name, err.message)
        return Reading(**{**common, "value_type": ValueType.STRING}, value=err.reading_text)
    mappings = source.mappings[i]
    if mappings and text in mappings:
        # A mapped value is text now, so EdgeX marks it String.
        return Reading(**{**common, "value_type": ValueType.STRING}, value=map_read(text, mappings))
    return Reading(**common, value=text)


class CommandExecutor:
    def __init__(self, registry: Registry, driver: ProtocolDriver, health: HealthTracker, max_ops: int) -> None:
        self.registry = registry
        self.driver = driver
        self.health = health
        self.max_ops = max_ops

    def check_unlocked(self, device: Device) -> None:
        if device.admin_state is AdminState.LOCKED:
            raise Locked(f"device {device.name!r} is LOCKED")
        if device.operating_state is OperatingState.DOWN:
            raise Locked(f"device {device.name!r} is DOWN")

    async def read(self, device_name: str, command: str, *, allow_down: bool = False) -> Event:
        device = self.registry.device(device_name)
        if device.admin_state is AdminState.LOCKED or (
            not allow_down and device.operating_state is OperatingState.DOWN
        ):
            self.check_unlocked(device)
        source = self.registry.source(device, command)
        if not source.readable:
            raise NotAllowed(f"{command!r} of device {device_name!r} is write-only")
        if len(source.requests) > self.max_ops:
            raise ContractInvalid(f"{command!r} reads {len(source.requests)} resources; the limit is {self.max_ops}")
        try:
            values = await self.driver.handle_read_commands(device, device.protocols, source.requests)
        except EdgeError as err:
            await self.health.failed(device, err)
            raise
        except Exception as err:  # a driver bug or library error must still answer clearly
            await self.health.failed(device, err)
            raise ServerError(f"reading {command!r} of device {device_name!r} failed: {err}") from err
        await self.health.succeeded(device)
        profile = device.profile_name or ""
        readings = [_reading(device, profile, source, i, cv) for i, cv in enumerate(values)]
        return Event(
            device_name=device.name, profile_name=profile, source_name=command, origin=now_ns(), readings=readings
        )

    async def write(self, device_name: str, command: str, settings: dict[str, Any]) -> None:
        device = self.registry.device(device_name)
        self.check_unlocked(device)
        source = self.registry.source(device, command)
        if not source.writable:
            raise NotAllowed(f"{command!r} of device {device_name!r} is read-only")
        requests, values = [], []
        for i, res in enumerate(source.resources):
            given = settings.get(res.name, settings.get(command) if len(source.resources) == 1 else None)
            if given is None:
                given = source.defaults[i]
            if given is None:
                if len(source.resources) == 1:
                    raise ContractInvalid(f'no value given for {res.name!r}; send {{"{res.name}": <value>}}')
                continue  # a multi-resource command writes only what it is given
            if source.mappings[i] and isinstance(given, str):
                given = map_write(given, source.mappings[i])
            try:
                raw = transform_write(parse_value(given, res.properties.value_type), res.properties, resource=res.name)
            except EdgeError as err:
                raise ContractInvalid(f"{res.name}: {err.message}") from None
            requests.append(source.requests[i])
            values.append(CommandValue(res.name, res.properties.value_type, raw))
        if not requests:
            raise ContractInvalid(f"no values given for command {command!r}")
        try:
            await self.driver.handle_write_commands(device, device.protocols, requests, values)
        except EdgeError as err:
            await self.health.failed(device, err)
            raise
        except Exception as err:
            await self.health.failed(device, err)
            raise ServerError(f"writing {command!r} of device {device_name!r} failed: {err}") from err
        await self.health.succeeded(device)
