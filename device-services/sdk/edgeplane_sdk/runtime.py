"""The device-service runtime: registration, provisioning, the device registry, events, autoevents and
the bus handlers (commands, validation, system events). Framework-free; the app wires it to REST."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

from edgeplane_common.bus import MessageBus, MessageEnvelope, Topics
from edgeplane_common.bus.topics import unescape
from edgeplane_common.clients import MetadataChanges, MetadataClient, SystemEventListener
from edgeplane_common.edgex.values import parse_flag
from edgeplane_common.errors import ContractInvalid, EdgeError, NotFound
from edgeplane_common.memory import release_free_heap
from edgeplane_common.models import Device, DeviceProfile, DeviceService, Event, OperatingState
from edgeplane_common.secrets import SecretStore
from edgeplane_common.tls import own_scheme
from edgeplane_sdk.autoevents import AutoEventScheduler
from edgeplane_sdk.commands import CommandExecutor, EventJson, HealthTracker, event_from_json
from edgeplane_sdk.discovery import to_provision
from edgeplane_sdk.driver import ProtocolDriver
from edgeplane_sdk.provisioning import provision
from edgeplane_sdk.registry import Registry
from edgeplane_sdk.service import DeviceServiceSDK
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
        self.secrets = SecretStore()  # the app's store (POST /api/v3/secret) once the app is built
        self.health = HealthTracker(self._set_operating_state, settings.device.down_after_failures)
        self.executor = CommandExecutor(self.registry, driver, self.health, settings.device.max_cmd_ops)
        self.autoevents = AutoEventScheduler(
            lambda d, s: self.executor.read_json(d, s, allow_down=True),
            self.publish_autoevent,
            claimed=driver.subscribes,
        )
        self.sdk = DeviceServiceSDK(self)
        self.system_events = SystemEventListener(bus, _Changes(self), owner=self.name)
        self._subs: list[Any] = []
        self._topics: dict[tuple[str, str, str], str] = {}
        self._publish_failing = False

    # -- lifecycle -------------------------------------------------------------------------------
    async def start(self) -> None:
        await self.bus.ensure_stream(Topics.EVENTS_STREAM, [Topics.EVENTS_ALL])
        await self.metadata.wait_ready()
        http = self.settings.http
        host = "127.0.0.1" if http.host == "0.0.0.0" else http.host
        base = self.settings.base_address or f"{own_scheme(self.settings.tls)}://{host}:{http.port}"
        await self.metadata.register_service(DeviceService(name=self.name, base_address=base))
        if self.settings.provision and self.res_dir is not None:
            await provision(self.metadata, self.res_dir, self.name)
        await self.driver.initialize(self.sdk)
        # Subscribe before loading, so a change made while we load is not missed (applying twice is harmless).
        queue = self.name if self.settings.command_queue_group else None
        self._subs = [
            await self.bus.subscribe(Topics.command_request_all(self.name), self._on_command, queue=queue),
            await self.bus.subscribe(Topics.device_validation(self.name), self._on_validate, queue=queue),
        ]
        await self.system_events.start()
        for device in await self.metadata.devices_of(self.name):
            await self._add_device(device)
        log.info("%s started with %d device(s)", self.name, len(self.registry.devices))
        release_free_heap()  # what starting up freed (compiling modules, provisioning) goes back to the OS

    async def stop(self) -> None:
        await self.system_events.stop()
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
            try:
                profile = await self.metadata.profile(name)
            except NotFound:
                return None
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
        await self.metadata.set_operating_state(name, state)

    # -- discovery -------------------------------------------------------------------------------
    async def discover(self) -> list[str]:
        """Ask the driver to discover devices and add those this service's provision watchers match to
        core-metadata (their system events then add them here); the names added."""
        found = await self.driver.discover()
        if not found:
            return []
        watchers = await self.metadata.provision_watchers_of(self.name)
        added: list[str] = []
        for device, watcher in to_provision(found, watchers, self.name, set(self.registry.devices)):
            try:
                await self.metadata.add_device(device.to_json_dict())
            except EdgeError as err:
                if err.status_code == 409:  # a device of that name exists (perhaps of another service)
                    log.info("discovered device %s already exists in core-metadata", device.name)
                else:
                    log.warning("discovered device %s could not be added: %s", device.name, err)
                continue
            log.info("discovered device %s added (provision watcher %s)", device.name, watcher.name)
            added.append(device.name)
        return added

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


class _Changes(MetadataChanges):
    """core-metadata's system events (this service's devices, every profile), applied to the runtime."""

    def __init__(self, runtime: DeviceServiceRuntime) -> None:
        self.rt = runtime

    async def device_changed(self, device: Device) -> None:
        rt = self.rt
        if device.service_name != rt.name:  # moved to another service
            await rt._remove_device(device.name)
        elif device.name in rt.registry.devices:
            await rt._update_device(device)
        else:
            await rt._add_device(device)

    async def device_deleted(self, device: Device) -> None:
        await self.rt._remove_device(device.name)

    async def profile_changed(self, profile: DeviceProfile) -> None:
        registry = self.rt.registry
        if profile.name in registry.profiles or any(d.profile_name == profile.name for d in registry.devices.values()):
            registry.put_profile(profile)

    async def profile_deleted(self, profile: DeviceProfile) -> None:
        self.rt.registry.profiles.pop(profile.name, None)


def _schedule_changed(old: Device, new: Device) -> bool:
    return (
        old.auto_events != new.auto_events
        or old.admin_state != new.admin_state
        or old.protocols != new.protocols
        or old.profile_name != new.profile_name
    )
