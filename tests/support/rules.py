"""Fakes for the rules engine's ports (core-metadata, device commands, alerts, HTTP, the clock) and a rule
manager wired to them: unit tests drive it event by event with a clock they move."""

from __future__ import annotations

import uuid
from typing import Any

import yaml

from device_modbus.main import RES_DIR as MODBUS_RES
from edgeplane_common.edgex.events import EventRecord, validate_event
from edgeplane_common.errors import NotFound, ServiceUnavailable
from edgeplane_common.models import Device, DeviceProfile
from rules_engine.application.actions import ActionRunner, Services
from rules_engine.application.rules import RuleManager, parse_rule
from rules_engine.infrastructure.memory_store import InMemoryRuleStore

PROFILE = DeviceProfile.model_validate(
    yaml.safe_load((MODBUS_RES / "profiles" / "edgeplane-demo-plc.profile.yaml").read_text())
)


class Directory:
    def __init__(self) -> None:
        self.devices = {
            "plc1": Device.model_validate({"name": "plc1", "serviceName": "device-modbus", "profileName": PROFILE.name})
        }
        self.down = False

    async def device(self, name: str) -> Device:
        if self.down:
            raise ServiceUnavailable("core-metadata is down")
        if name not in self.devices:
            raise NotFound(f"device {name!r} does not exist")
        return self.devices[name]

    async def profile(self, name: str) -> DeviceProfile:
        if self.down:
            raise ServiceUnavailable("core-metadata is down")
        return PROFILE


class Commands:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.fail: Exception | None = None

    async def set(self, device: Device, command: str, settings: dict[str, Any], params: dict[str, str]) -> None:
        if self.fail is not None:
            raise self.fail
        self.sent.append((device.name, command, settings))


class Alerts:
    def __init__(self) -> None:
        self.published: list[tuple[str, Any]] = []

    async def publish(self, topic: str, payload: Any) -> None:
        self.published.append((topic, payload))


class Http:
    def __init__(self, statuses: list[int | Exception]) -> None:
        self.statuses = statuses
        self.calls: list[tuple[str, str, dict[str, str], bytes | None]] = []

    async def send(self, method: str, url: str, headers: dict[str, str], body: bytes | None, timeout: float) -> int:
        self.calls.append((method, url, headers, body))
        result = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        if isinstance(result, Exception):
            raise result
        return result


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000_000

    def now_ms(self) -> int:
        return self.now


class Engine:
    def __init__(self, http: Http | None = None) -> None:
        self.directory = Directory()
        self.commands = Commands()
        self.alerts = Alerts()
        self.http = http or Http([200])
        self.clock = Clock()
        self.store = InMemoryRuleStore()
        self.runner = ActionRunner(Services(self.directory, self.commands, self.alerts, self.http))
        self.rules = RuleManager(self.store, self.runner, self.clock)

    async def add(self, **rule: Any) -> None:
        await self.rules.create(parse_rule(rule))

    async def send(self, device: str = "plc1", advance_ms: int = 0, **readings: Any) -> None:
        self.clock.now += advance_ms
        self.rules.dispatch(event(device, **readings))
        await self.runner.drain()

    async def tick(self, advance_ms: int) -> None:
        self.clock.now += advance_ms
        self.rules.tick()
        await self.runner.drain()


VALUE_TYPES = {bool: "Bool", int: "Int64", float: "Float64", str: "String"}


def event(device: str, **readings: Any) -> EventRecord:
    def text(v: Any) -> str:
        return ("true" if v else "false") if isinstance(v, bool) else str(v)

    return validate_event(
        {
            "id": str(uuid.uuid4()),
            "deviceName": device,
            "profileName": PROFILE.name,
            "sourceName": next(iter(readings)),
            "origin": 1,
            "readings": [
                {"resourceName": k, "valueType": VALUE_TYPES[type(v)], "value": text(v)} for k, v in readings.items()
            ],
        }
    )
