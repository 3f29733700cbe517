"""The device-service runtime: registration, provisioning, the device registry, events, autoevents and
the bus handlers (commands, validation, system events). Framework-free; the app wires it to REST."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from edgeplane_common.bus import MessageBus, MessageEnvelope, Topics
from edgeplane_common.bus.topics import escape, unescape
from edgeplane_common.edgex.values import parse_flag
from edgeplane_common.errors import ContractInvalid, EdgeError
from edgeplane_common.models import Device, DeviceProfile, DeviceService, Event, OperatingState
from edgeplane_sdk.autoevents import AutoEventScheduler
from edgeplane_sdk.commands import CommandExecutor, EventJson, HealthTracker, event_from_json
from edgeplane_sdk.driver import ProtocolDriver
from edgeplane_sdk.metadata_client import MetadataClient
from edgeplane_sdk.provisioning import provision
from edgeplane_sdk.registry import Registry
from edgeplane_sdk.settings import DeviceServiceSettings

log = logging.getLogger(__name__)


def flag(value: Any, default: bool) -> bool:
    """A ds-pushevent / ds-returnevent switch read with the kernel's `parse_flag`; absent or spelled otherwise
    keeps `default`, as device-sdk-go acts only on a true or false it recognises."""
    found = parse_flag(None if value is None else str(value))
    return default if found is None else found


class DeviceServiceRuntime:
    def __init__(
        self,
        settings: DeviceServiceSettings,
        driver: ProtocolDriver,
        bus: MessageBus,
        metadata: MetadataClient,
        *,
        default_res_dir: Path | None = None,
    ) -> None:
        self.settings = settings
        self.name = settings.service_name
        self.driver = driver
        self.bus = bus
        self.metadata = metadata
        self.res_dir = Path(settings.res_dir) if settings.res_dir else default_res_dir
        self.registry = Registry()
        self.health = HealthTracker(self._set_operating_state, settings.device.down_after_failures)
        self.executor = CommandExecutor(self.registry, driver, self.health, settings.device.max_cmd_ops)
        self.autoevents = AutoEventScheduler(
            lambda d, s: self.executor.read_json(d, s, allow_down=True), self.publish_autoevent
        )
        self._subs: list[Any] = []
        self._topics: dict[tuple[str, str, str], str] = {}
        self._publish_failing = False

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.bus.ensure_stream(Topics.EVENTS_STREAM, [Topics.EVENTS_ALL])
        await self.metadata.wait_ready()
        http = self.settings.http
        base = (
            self.settings.base_address or f"http://{'127.0.0.1' if http.host == '0.0.0.0' else http.host}:{http.port}"
        )
        await self.metadata.register_service(DeviceService(name=self.name, base_address=base))
        if self.settings.provision and self.res_dir is not None:
            await provision(self.metadata, self.res_dir, self.name)
        await self.driver.initialize()
        # Subscribe before loading, so a change made while we load is not missed (applying twice is harmless).
        queue = self.name if self.settings.command_queue_group else None
        self._subs = [
            await self.bus.subscribe(Topics.command_request_all(self.name), self._on_command, queue=queue),
            await self.bus.subscribe(Topics.device_validation(self.name), self._on_validate, queue=queue),
            await self.bus.subscribe(
                f"edgex.system-events.core-metadata.device.*.{escape(self.name)}.>", self._on_device_event
            ),
            await self.bus.subscribe("edgex.system-events.core-metadata.deviceprofile.*.>", self._on_profile_event),
        ]
        for device in await self.metadata.devices_of(self.name):
            await self._add_device(device)
        log.info("%s started with %d device(s)", self.name, len(self.registry.devices))

    async def stop(self) -> None:
        for sub in self._subs:
            await sub.unsubscribe()
        await self.autoevents.stop()
        await self.driver.stop()

    # -- events ----------------------------------------------------------------------------------
    def _topic(self, data: EventJson) -> str:
        device_name, source = data["deviceName"], data["sourceName"]
        device = self.registry.devices.get(device_name)
        profile = device.profile_name if device and device.profile_name else data["profileName"]
        key = (profile, device_name, source)
        topic = self._topics.get(key)
        if topic is None:
            if len(self._topics) > 4096:
                self._topics.clear()
            topic = self._topics[key] = Topics.events(self.name, profile, device_name, source)
        return topic

    async def publish_event(self, event: Event | EventJson) -> None:
        """Publish an event into the events stream and wait until it is stored (or raise)."""
        data = event if isinstance(event, dict) else event.to_json_dict()
        await self.bus.publish_durable(self._topic(data), MessageEnvelope(payload=data))

    async def publish_autoevent(self, event: Event | EventJson) -> None:
        """Publish without waiting for the stream's ack (the bus bounds the acks outstanding), so polling
        goes on while JetStream stores; a failure is logged when it starts and when it ends."""
        data = event if isinstance(event, dict) else event.to_json_dict()
        try:
            ack = await self.bus.publish_durable_pipelined(self._topic(data), MessageEnvelope(payload=data))
        except EdgeError as err:
            self._publish_failed(err)
            raise
        ack.add_done_callback(self._acked)

    def _acked(self, ack: asyncio.Future[None]) -> None:
        err = None if ack.cancelled() else ack.exception()
        if err is not None:
            self._publish_failed(err)
        elif self._publish_failing:
            self._publish_failing = False
            log.info("events are stored in the events stream again")

    def _publish_failed(self, err: BaseException) -> None:
        if not self._publish_failing:
            self._publish_failing = True
            log.warning("autoevent not stored in the events stream: %s", err)

    async def read_command(self, device: str, command: str, *, push: bool) -> Event:
        return event_from_json(await self._read_command(device, command, push=push))

    async def _read_command(self, device: str, command: str, *, push: bool) -> EventJson:
        data = await self.executor.read_json(device, command)
        if push:
            await self.publish_event(data)
        return data

    # -- devices ---------------------------------------------------------------------------------
    async def _profile(self, name: str | None) -> DeviceProfile | None:
        if not name:
            return None
        profile = self.registry.profiles.get(name)
        if profile is None:
            profile = await self.metadata.profile(name)
            if profile is not None:
                self.registry.put_profile(profile)
        return profile

    async def _add_device(self, device: Device) -> None:
        await self._profile(device.profile_name)
        self.registry.devices[device.name] = device
        try:
            await self.driver.add_device(device)
        except EdgeError as err:
            log.warning("driver refused device %s: %s", device.name, err)
        self.autoevents.start_device(device)

    async def _update_device(self, device: Device) -> None:
        old = self.registry.devices.get(device.name)
        await self._profile(device.profile_name)
        self.registry.devices[device.name] = device
        await self.driver.update_device(device)
        if old is None or _schedule_changed(old, device):
            self.autoevents.start_device(device)

    async def _remove_device(self, name: str) -> None:
        self.autoevents.stop_device(name)
        device = self.registry.devices.pop(name, None)
        if device is not None:
            await self.driver.remove_device(device)

    async def _set_operating_state(self, name: str, state: OperatingState) -> None:
        device = self.registry.devices.get(name)
        if device is not None:
            self.registry.devices[name] = device.model_copy(update={"operating_state": state})
        await self.metadata.set_operating_state(name, state.value)

    # -- bus handlers ----------------------------------------------------------------------------
    async def _on_command(self, env: MessageEnvelope) -> MessageEnvelope:
        # Subject: edgex.device.command.request.<service>.<device>.<command>.<get|set>
        parts = (env.received_topic or "").split(".")
        device, command, method = unescape(parts[-3]), unescape(parts[-2]), parts[-1]
        params = env.query_params or {}
        if method == "get":
            event = await self._read_command(device, command, push=flag(params.get("ds-pushevent"), False))
            body: dict[str, Any] = {"apiVersion": "v3", "statusCode": 200}
            if flag(params.get("ds-returnevent"), True):
                body["event"] = event
            return env.reply(body)
        if method == "set":
            if not isinstance(env.payload, dict):
                raise ContractInvalid("a set command needs a JSON object of resource names to values")
            await self.executor.write(device, command, env.payload)
            return env.reply({"apiVersion": "v3", "statusCode": 200})
        raise ContractInvalid(f"unknown command method {method!r}; use get or set")

    async def _on_validate(self, env: MessageEnvelope) -> MessageEnvelope:
        device = Device.model_validate(env.payload)
        await self.driver.validate_device(device)
        return env.reply({"apiVersion": "v3", "statusCode": 200})

    async def _on_device_event(self, env: MessageEnvelope) -> None:
        payload = env.payload or {}
        device = Device.model_validate(payload.get("details"))
        action = payload.get("action")
        if action == "delete" or device.service_name != self.name:
            await self._remove_device(device.name)
        elif device.name in self.registry.devices:
            await self._update_device(device)
        else:
            await self._add_device(device)

    async def _on_profile_event(self, env: MessageEnvelope) -> None:
        payload = env.payload or {}
        profile = DeviceProfile.model_validate(payload.get("details"))
        if payload.get("action") == "delete":
            self.registry.profiles.pop(profile.name, None)
            return
        if profile.name in self.registry.profiles or any(
            d.profile_name == profile.name for d in self.registry.devices.values()
        ):
            self.registry.put_profile(profile)


def _schedule_changed(old: Device, new: Device) -> bool:
    return (
        old.auto_events != new.auto_events
        or old.admin_state != new.admin_state
        or old.protocols != new.protocols
        or old.profile_name != new.profile_name
    )


async def wait_forever() -> None:
    await asyncio.Event().wait()
