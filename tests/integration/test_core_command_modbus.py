"""core-command end to end: Modbus simulator → device-modbus → NATS → core-command, with core-metadata, all
in this process over real HTTP, NATS and Redis. A PUT through core-command changes the simulator's holding
registers and a GET reads them back; ds-pushevent / ds-returnevent; each error case with its status and
message; a device service that is not running answers 503 at once, a slow one 503 after the timeout."""

from __future__ import annotations

import struct
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from core_command.main import create_app as create_command_app
from core_command.settings import CoreCommandSettings
from core_metadata.main import create_app as create_metadata_app
from device_modbus.main import RES_DIR
from device_modbus.main import create_app as create_modbus_app
from device_modbus.settings import DeviceModbusSettings
from device_modbus.sim.config import load_config
from device_modbus.sim.server import ModbusSimulator
from edgeplane_common.bus import MessageEnvelope
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.embedded import free_port
from edgeplane_common.settings import NatsSettings
from tests.support.metadata import metadata_settings
from tests.support.stack import serve, wait_until

DEMO_PROFILE = RES_DIR / "profiles" / "edgeplane-demo-plc.profile.yaml"
DEMO_SIM = RES_DIR / "sim" / "demo-plc.yaml"
TIMEOUT = 1.0  # core-command's command timeout in these tests


@dataclass
class Stack:
    command: httpx.AsyncClient
    metadata: httpx.AsyncClient
    modbus: httpx.AsyncClient
    sim: ModbusSimulator
    nats_url: str


def plc(name: str, port: int, unit: int = 1, *, service: str = "device-modbus", timeout: str = "1") -> dict[str, Any]:
    return {
        "apiVersion": "v3",
        "device": {
            "name": name,
            "serviceName": service,
            "profileName": "Edgeplane-Demo-PLC",
            "adminState": "UNLOCKED",
            "operatingState": "UP",
            "protocols": {
                "modbus-tcp": {
                    "Address": "127.0.0.1",
                    "Port": str(port),
                    "UnitID": str(unit),
                    "Timeout": timeout,
                    "IdleTimeout": "0",
                }
            },
        },
    }


@pytest.fixture
async def stack(nats_url: str, redis_url: str) -> AsyncIterator[Stack]:
    r = aioredis.from_url(redis_url)
    await r.flushdb()
    await r.aclose()
    async with AsyncExitStack() as es:
        sim = await es.enter_async_context(ModbusSimulator(load_config(DEMO_SIM), "127.0.0.1", 0, autotick=False))
        md_url = await es.enter_async_context(serve(create_metadata_app(metadata_settings(nats_url, redis_url))))
        metadata = await es.enter_async_context(httpx.AsyncClient(base_url=md_url + "/api/v3"))
        with DEMO_PROFILE.open("rb") as fh:
            assert (await metadata.post("/deviceprofile/uploadfile", files={"file": fh})).status_code == 201
        ds_port = free_port()
        ds_settings = DeviceModbusSettings.model_validate(
            {
                "nats": {"url": nats_url},
                "metadata_url": md_url,
                "provision": False,
                "http": {"host": "127.0.0.1", "port": ds_port},
            }
        )
        ds_url = await es.enter_async_context(serve(create_modbus_app(ds_settings), ds_port))
        modbus = await es.enter_async_context(httpx.AsyncClient(base_url=ds_url + "/api/v3", timeout=10))
        cc_port = free_port()
        cc_settings = CoreCommandSettings.model_validate(
            {
                "nats": {"url": nats_url},
                "metadata_url": md_url,
                "http": {"host": "127.0.0.1", "port": cc_port},
                "command": {"timeout": TIMEOUT},
            }
        )
        cc_url = await es.enter_async_context(serve(create_command_app(cc_settings), cc_port))
        command = await es.enter_async_context(httpx.AsyncClient(base_url=cc_url + "/api/v3", timeout=10))
        stack = Stack(command, metadata, modbus, sim, nats_url)
        await add_plc(stack, plc("plc1", sim.port))
        yield stack


async def add_plc(stack: Stack, body: dict[str, Any]) -> None:
    r = await stack.metadata.post("/device", json=[body])
    assert r.json()[0]["statusCode"] == 201, r.text
    name = body["device"]["name"]

    async def known() -> bool:
        return (await stack.modbus.get(f"/device/name/{name}/FlowRate")).status_code != 404

    await wait_until(known)


def readings(r: httpx.Response) -> dict[str, dict[str, Any]]:
    assert r.status_code == 200, r.text
    return {x["resourceName"]: x for x in r.json()["event"]["readings"]}


async def expect(r: httpx.Response, status: int, fragment: str) -> None:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["statusCode"] == status
    assert fragment in body["message"], body["message"]


async def test_put_writes_holding_registers_and_get_reads_them_back(stack: Stack) -> None:
    r = await stack.command.put(
        "/device/name/plc1/Setpoints", json={"Mode": "2", "SpeedSetpoint": "1450", "TempSetpoint": "55.5"}
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"apiVersion": "v3", "statusCode": 200}
    regs = await stack.sim.read_registers(1, "holding_registers", 0, 4)
    assert regs[:2] == [2, 1450]
    assert struct.unpack(">f", struct.pack(">HH", regs[2], regs[3]))[0] == pytest.approx(55.5)
    back = readings(await stack.command.get("/device/name/plc1/Setpoints"))
    assert (back["Mode"]["value"], back["SpeedSetpoint"]["value"]) == ("2", "1450")
    assert float(back["TempSetpoint"]["value"]) == pytest.approx(55.5)

    # A single resource, as its own command; a JSON number works as well as EdgeX's text.
    assert (await stack.command.put("/device/name/plc1/SpeedSetpoint", json={"SpeedSetpoint": 777})).status_code == 200
    assert await stack.sim.read_registers(1, "holding_registers", 1, 1) == [777]
    assert readings(await stack.command.get("/device/name/plc1/SpeedSetpoint"))["SpeedSetpoint"]["value"] == "777"
    # A coil.
    assert (await stack.command.put("/device/name/plc1/ValveOpen", json={"ValveOpen": "false"})).status_code == 200
    assert await stack.sim.read_bits(1, "coils", 1, 1) == [False]
    # Reads see what the PLC holds.
    await stack.sim.set(1, "flow_rate", 321)
    assert readings(await stack.command.get("/device/name/plc1/FlowRate"))["FlowRate"]["value"] == "321"


async def test_push_event_and_return_event(stack: Stack) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    bus = NatsMessageBus(NatsSettings(url=stack.nats_url), name="listener")
    await bus.connect()

    async def on_event(env: MessageEnvelope) -> None:
        events.append((env.received_topic or "", env.payload))

    sub = await bus.subscribe("edgex.events.device.device-modbus.>", on_event)
    try:
        r = await stack.command.get("/device/name/plc1/FlowRate")  # default: returned, not pushed
        assert "event" in r.json()
        r = await stack.command.get("/device/name/plc1/PowerReadings", params={"ds-pushevent": "true"})
        returned = r.json()["event"]
        await wait_until(lambda: events)
        topic, pushed = events[-1]
        assert topic == "edgex.events.device.device-modbus.Edgeplane-Demo-PLC.plc1.PowerReadings"
        assert pushed["id"] == returned["id"]
        assert len(pushed["readings"]) == 4

        r = await stack.command.get("/device/name/plc1/FlowRate", params={"ds-returnevent": "false"})
        assert r.status_code == 200
        assert r.json() == {"apiVersion": "v3", "statusCode": 200}

        r = await stack.command.get(
            "/device/name/plc1/FlowRate", params={"ds-pushevent": "true", "ds-returnevent": "false"}
        )
        assert "event" not in r.json()
        await wait_until(lambda: events[-1][0].endswith(".plc1.FlowRate"))
        assert len(events) == 2  # only the two pushed
    finally:
        await sub.unsubscribe()
        await bus.close()


async def test_each_error_case_answers_its_status_and_message(stack: Stack) -> None:
    c = stack.command
    await expect(await c.get("/device/name/nope/FlowRate"), 404, "device 'nope' does not exist")
    await expect(await c.get("/device/name/plc1/Nope"), 404, "has no device command or device resource named 'Nope'")
    await expect(await c.put("/device/name/plc1/Mode", json={"Mode": "7"}), 400, "value 7 is above the maximum 2")
    await expect(await c.put("/device/name/plc1/Mode", json={"Mode": "auto"}), 400, "invalid Int16 value 'auto'")
    await expect(await c.put("/device/name/plc1/FlowRate", json={"FlowRate": "1"}), 405, "read-only")
    await expect(await c.get("/device/name/plc1/FlowRate", params={"ds-returnevent": "no"}), 400, "true or false")
    assert await stack.sim.read_registers(1, "holding_registers", 0, 1) == [1]  # untouched

    # The device refuses: the device service's status and message come through unchanged.
    stack.sim.set_exception(1, 2)
    await expect(await c.get("/device/name/plc1/FlowRate"), 502, "Modbus exception 2 (illegal data address)")
    await expect(await c.put("/device/name/plc1/Mode", json={"Mode": "0"}), 502, "Modbus exception 2")
    stack.sim.set_exception(1, None)

    # Locked in core-metadata: core-command hears of it (system event) and refuses before sending.
    r = await stack.metadata.patch(
        "/device", json=[{"apiVersion": "v3", "device": {"name": "plc1", "adminState": "LOCKED"}}]
    )
    assert r.json()[0]["statusCode"] == 200

    async def status() -> int:
        return (await c.get("/device/name/plc1/FlowRate")).status_code

    await wait_until(lambda: _is(status(), 423))
    await expect(await c.put("/device/name/plc1/Mode", json={"Mode": "0"}), 423, "device 'plc1' is LOCKED")
    r = await stack.metadata.patch(
        "/device", json=[{"apiVersion": "v3", "device": {"name": "plc1", "adminState": "UNLOCKED"}}]
    )
    await wait_until(lambda: _is(status(), 200))


async def _is(awaitable: Any, expected: int) -> bool:
    return bool(await awaitable == expected)


async def test_a_device_service_that_is_not_running_answers_503_at_once(stack: Stack) -> None:
    r = await stack.metadata.post(
        "/deviceservice",
        json=[{"apiVersion": "v3", "service": {"name": "device-modbus-2", "baseAddress": "http://127.0.0.1:1"}}],
    )
    assert r.json()[0]["statusCode"] == 201
    r = await stack.metadata.post("/device", json=[plc("plc9", stack.sim.port, service="device-modbus-2")])
    assert r.json()[0]["statusCode"] == 201, r.text  # stored unvalidated: its service is not running
    start = time.perf_counter()
    r = await stack.command.get("/device/name/plc9/FlowRate")
    elapsed = time.perf_counter() - start
    await expect(r, 503, "device service 'device-modbus-2' is unavailable for get command 'FlowRate' of device 'plc9'")
    assert "no service is listening" in r.json()["message"]
    assert elapsed < TIMEOUT  # NATS reports "no responders" at once; no waiting for the timeout


async def test_a_slow_device_service_answers_503_after_the_timeout(stack: Stack) -> None:
    # The PLC answers after 3 s; device-modbus waits up to 5 s for it, core-command only TIMEOUT.
    await add_plc(stack, plc("slowplc", stack.sim.port, unit=2, timeout="5"))
    stack.sim.set_delay(2, 3.0)
    try:
        start = time.perf_counter()
        r = await stack.command.get("/device/name/slowplc/FlowRate")
        elapsed = time.perf_counter() - start
        await expect(
            r, 503, f"no reply on edgex.device.command.request.device-modbus.slowplc.FlowRate.get within {TIMEOUT:g}s"
        )
        assert "device service 'device-modbus' is unavailable" in r.json()["message"]
        assert elapsed >= TIMEOUT
    finally:
        stack.sim.set_delay(2, None)
