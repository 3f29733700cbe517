"""What a driver gets at `initialize`: the SDK's services (device-sdk-go's `DeviceServiceSDK`), small on purpose.

A driver pushes values its devices send on their own (OPC UA subscriptions, unsolicited reports) with
`push_async_values`: the event is built and published exactly as an autoevent's (transforms, mappings,
EdgeX JSON, the events stream with its bounded outstanding acks).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from edgeplane_common.errors import ContractInvalid, EdgeError, Locked, NotFound
from edgeplane_common.models import AdminState, Device, DeviceProfile, OperatingState
from edgeplane_common.secrets import SecretStore
from edgeplane_sdk.driver import CommandValue

if TYPE_CHECKING:
    from edgeplane_sdk.runtime import DeviceServiceRuntime


class DeviceServiceSDK:
    def __init__(self, runtime: DeviceServiceRuntime) -> None:
        self._runtime = runtime
        self.logger = logging.getLogger(f"edgeplane_sdk.driver.{runtime.name}")

    @property
    def name(self) -> str:
        """This device service's name (the owner of its devices in core-metadata)."""
        return self._runtime.name

    @property
    def secrets(self) -> SecretStore:
        """The service's secret store (filled through POST /api/v3/secret; encrypted in Redis and loaded before
        the driver starts when the service has a key file, else in memory): look credentials up in it when
        connecting, so a secret stored at run time is used at the next connect."""
        return self._runtime.secrets

    def device(self, name: str) -> Device:
        """A device of this service as it is now; NotFound if it has none of that name."""
        return self._runtime.registry.device(name)

    def devices(self) -> list[Device]:
        """Every device of this service."""
        return list(self._runtime.registry.devices.values())

    def profile(self, name: str) -> DeviceProfile:
        """A profile this service's devices use; NotFound if none of them does."""
        found = self._runtime.registry.profiles.get(name)
        if found is None:
            raise NotFound(f"device profile {name!r} is not used by this device service")
        return found

    async def load_profile(self, name: str) -> DeviceProfile | None:
        """A profile by name, from core-metadata when no device of this service uses it yet (e.g. to validate
        a device being added); None if core-metadata has none of that name."""
        return await self._runtime._profile(name)

    async def set_device_reachable(self, device_name: str, reachable: bool, reason: str | None = None) -> None:
        """Mark a device UP or DOWN in core-metadata when the driver learns it by itself (a session lost or
        re-established), logged once per change; nothing when it is in that state already or unknown."""
        runtime = self._runtime
        device = runtime.registry.devices.get(device_name)
        if device is None:
            return
        state = OperatingState.UP if reachable else OperatingState.DOWN
        if reachable:
            runtime.health.failures.pop(device_name, None)
        if device.operating_state is state:
            return
        if reachable:
            self.logger.info("device %s is reachable again; marked UP", device_name)
        else:
            self.logger.warning("device %s marked DOWN: %s", device_name, reason or "unreachable")
        try:
            await runtime._set_operating_state(device_name, state)
        except EdgeError as err:
            self.logger.warning("could not set device %s %s in core-metadata: %s", device_name, state.value, err)

    async def push_async_values(
        self, device_name: str, values: list[CommandValue], *, source_name: str | None = None
    ) -> None:
        """Publish raw values read from `device_name` without a command asking for them.

        Without `source_name`, each value is an event of its own resource (as device-opcua pushes each data
        change). With it, the values are one event of that device command or resource: one value per
        resource it reads, in any order. NotFound for an unknown device or source, Locked for a LOCKED
        device (nothing is published), ContractInvalid when values do not fit the source; a failure to
        store the event is raised when known at once and logged otherwise, as for autoevents."""
        runtime = self._runtime
        device = runtime.registry.device(device_name)
        if device.admin_state is AdminState.LOCKED:
            raise Locked(f"device {device_name!r} is LOCKED; its values are not published")
        if source_name is not None:
            source = runtime.registry.source(device, source_name)
            ordered = _in_source_order(values, [r.name for r in source.command.resources], source_name)
            await runtime.publish_autoevent(runtime.executor.event_json(device, source_name, source, ordered))
            return
        for value in values:
            # One event per resource: its source is built per event rather than kept per resource (1,000
            # monitored items kept ~1.5 MiB of sources, specs and templates; building one costs microseconds).
            source = runtime.registry.resource_source(device, value.resource_name)
            ordered = _in_source_order([value], [r.name for r in source.command.resources], value.resource_name)
            event = runtime.executor.event_json(device, value.resource_name, source, ordered, cache=False)
            await runtime.publish_autoevent(event)


def _in_source_order(values: list[CommandValue], names: list[str], source: str) -> list[CommandValue]:
    if [v.resource_name for v in values] == names:
        return values
    by_name = {v.resource_name: v for v in values}
    if len(by_name) != len(values) or set(by_name) != set(names):
        given = [v.resource_name for v in values]
        raise ContractInvalid(f"values for {source!r} must be one per resource {names}, got {given}")
    return [by_name[name] for name in names]
