"""The virtual ProtocolDriver (EdgeX device-virtual's behaviour), for any profile.

Per device and resource it keeps the last value read or written. A read draws a new random value (see
`generator`) while randomization is on for the resource, and returns the kept value while it is off. As in
device-virtual, randomization starts on, a write turns it off (so the written value reads back), and a
writable Bool resource named `EnableRandomization_<resource>` switches it for `<resource>`; reading that
switch tells whether it is on. A resource read with randomization off before any value was kept starts
from its defaultValue.

Nothing depends on resource names other than that prefix: the driver works from each request's valueType
and properties, so it serves profiles created at run time, whatever their names.
"""

from __future__ import annotations

import json
import logging
import random
from dataclasses import dataclass, field
from typing import Any, Final

from device_virtual.generator import ValueGenerator
from edgeplane_common.edgex.transforms import has_transforms, transform_write
from edgeplane_common.edgex.values import parse_value
from edgeplane_common.errors import EdgeError
from edgeplane_common.models import Device, DeviceResource, ValueType
from edgeplane_common.models.event import now_ns
from edgeplane_sdk.driver import CommandRequest, CommandValue, ProtocolDriver

log = logging.getLogger(__name__)

RANDOMIZATION_PREFIX: Final = "EnableRandomization_"


def switched_resource(request: CommandRequest) -> str | None:
    """The resource an `EnableRandomization_<resource>` Bool switches; None for any other resource."""
    name = request.resource_name
    if request.value_type is ValueType.BOOL and name.startswith(RANDOMIZATION_PREFIX):
        return name[len(RANDOMIZATION_PREFIX) :] or None
    return None


@dataclass(slots=True)
class _DeviceState:
    profile: str | None
    values: dict[str, tuple[ValueType, Any]] = field(default_factory=dict)
    """Last raw value read or written per resource, with its valueType (a profile change resets it)."""
    fixed: set[str] = field(default_factory=set)
    """Resources with randomization off."""


class VirtualDriver(ProtocolDriver):
    def __init__(self, *, binary_size: int = 64, array_length: int = 5, rng: random.Random | None = None) -> None:
        self.generator = ValueGenerator(rng=rng, binary_size=binary_size, array_length=array_length)
        self._devices: dict[str, _DeviceState] = {}

    def _state(self, device: Device) -> _DeviceState:
        state = self._devices.get(device.name)
        if state is None or state.profile != device.profile_name:
            state = self._devices[device.name] = _DeviceState(device.profile_name)
        return state

    # -- lifecycle -------------------------------------------------------------------------------
    async def validate_device(self, device: Device) -> None:
        """Every device is valid: a virtual device has no protocol properties to check (device-virtual's
        ValidateDevice accepts any device as well)."""

    async def add_device(self, device: Device) -> None:
        self._state(device)

    async def update_device(self, device: Device) -> None:
        self._state(device)  # kept values survive a lock/unlock or a label change; a new profile resets them

    async def remove_device(self, device: Device) -> None:
        self._devices.pop(device.name, None)

    # -- commands --------------------------------------------------------------------------------
    async def handle_read_commands(
        self, device: Device, protocols: dict[str, dict[str, Any]], requests: list[CommandRequest]
    ) -> list[CommandValue]:
        state = self._state(device)
        origin = now_ns()
        out = []
        for req in requests:
            target = switched_resource(req)
            value = (target not in state.fixed) if target is not None else self._read(state, req.resource)
            out.append(CommandValue(req.resource_name, req.value_type, value, origin=origin))
        return out

    async def handle_write_commands(
        self,
        device: Device,
        protocols: dict[str, dict[str, Any]],
        requests: list[CommandRequest],
        values: list[CommandValue],
    ) -> None:
        state = self._state(device)
        for req, cv in zip(requests, values, strict=True):
            target = switched_resource(req)
            if target is not None:
                if cv.value:
                    state.fixed.discard(target)
                else:
                    state.fixed.add(target)
                continue
            state.values[req.resource_name] = (req.value_type, cv.value)
            state.fixed.add(req.resource_name)

    def _read(self, state: _DeviceState, res: DeviceResource) -> Any:
        vt = res.properties.value_type
        kept = state.values.get(res.name)
        if res.name in state.fixed:
            if kept is not None and kept[0] is vt:
                return kept[1]
            value = self._default(res)
            if value is None:
                value = self._random(res)
        else:
            value = self._random(res)
        state.values[res.name] = (vt, value)
        return value

    def _random(self, res: DeviceResource) -> Any:
        props = res.properties
        vt = props.value_type
        value = self.generator.value(vt, props.minimum, props.maximum, props.default_value)
        if vt.is_numeric and has_transforms(props):
            # minimum/maximum bound the reading, which the SDK computes from this raw value: draw the
            # reading and reverse the transforms; where they cannot be reversed, any raw value will do.
            try:
                return transform_write(value, props, resource=res.name)
            except EdgeError:
                return self.generator.value(vt)
        return value

    @staticmethod
    def _default(res: DeviceResource) -> Any:
        props = res.properties
        if props.default_value is None:
            return None
        try:
            if props.value_type in (ValueType.OBJECT, ValueType.OBJECT_ARRAY):
                return json.loads(props.default_value)  # JSON text in the profile, a JSON value in a reading
            return transform_write(parse_value(props.default_value, props.value_type), props, resource=res.name)
        except (EdgeError, json.JSONDecodeError) as err:
            log.warning("resource %s: defaultValue %r not usable: %s", res.name, props.default_value, err)
            return None
