"""device-modbus end to end: real pymodbus simulator, real NATS and Redis, core-metadata over real HTTP."""

from __future__ import annotations

import asyncio
import struct
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from device_modbus.sim.config import load_config
from device_modbus.sim.server import ModbusSimulator
from edgeplane_common.bus import MessageEnvelope
from edgeplane_common.bus.nats import NatsMessageBus
from edgeplane_common.settings import NatsSettings
from tests.support.modbus import DEMO_SIM, Stack, modbus_device, modbus_stack
from tests.support.modbus import add_device as _add_device
from tests.support.stack import wait_until


def demo_device(name: str, port: int, unit: int = 1, **extra: Any) -> dict[str, Any]:
    return modbus_device(name, "Edgeplane-Demo-PLC", port, unit, **extra)


@pytest.fixture
async def stack(nats_url: str, redis_url: str) -> AsyncIterator[Stack]:
    async with modbus_stack(nats_url, redis_url) as s:
        yield s


async def add_device(stack: Stack, body: dict[str, Any]) -> None:
    await _add_device(stack, body, "FlowRate")


def readings(resp: httpx.Response) -> dict[str, Any]:
    assert resp.status_code == 200, resp.text
    return {r["resourceName"]: r for r in resp.json()["event"]["readings"]}


async def test_device_added_at_run_time_is_validated_read_and_written(stack: Stack) -> None:
    # Validation runs over the bus against the live device service: a bad property is refused.
    bad = demo_device("bad-plc", stack.sim.port)
    bad["device"]["protocols"]["modbus-tcp"]["Port"] = "not-a-port"
    r = await stack.metadata.post("/api/v3/device", json=[bad])
    assert r.json()[0]["statusCode"] == 400
    assert "Port" in r.json()[0]["message"]

    await add_device(stack, demo_device("plc1", stack.sim.port))
    got = readings(await stack.modbus.get("/api/v3/device/name/plc1/PowerReadings"))
    assert set(got) == {"ActivePower", "Voltage", "Current", "EnergyWh"}
    for name, sim_name in [("ActivePower", "power_kw"), ("Voltage", "voltage"), ("Current", "current")]:
        expected = await stack.sim.get(1, sim_name)
        assert got[name]["valueType"] == "Float32"
        assert float(got[name]["value"]) == pytest.approx(expected, rel=1e-6)
    assert int(got["EnergyWh"]["value"]) == await stack.sim.get(1, "energy_wh")

    # Writes go through the reverse transforms and land in the simulator's registers.
    r = await stack.modbus.put(
        "/api/v3/device/name/plc1/Setpoints", json={"Mode": "2", "SpeedSetpoint": "1450", "TempSetpoint": "55.5"}
    )
    assert r.status_code == 200, r.text
    regs = await stack.sim.read_registers(1, "holding_registers", 0, 4)
    assert regs[0] == 2
    assert regs[1] == 1450
    assert struct.unpack(">f", struct.pack(">HH", regs[2], regs[3]))[0] == pytest.approx(55.5)
    back = readings(await stack.modbus.get("/api/v3/device/name/plc1/Setpoints"))
    assert (back["Mode"]["value"], back["SpeedSetpoint"]["value"]) == ("2", "1450")

    # Range checks happen before anything is sent.
    r = await stack.modbus.put("/api/v3/device/name/plc1/Mode", json={"Mode": "7"})
    assert r.status_code == 400
    assert "maximum" in r.json()["message"]
    assert (await stack.sim.read_registers(1, "holding_registers", 0, 1)) == [2]
    r = await stack.modbus.put("/api/v3/device/name/plc1/FlowRate", json={"FlowRate": "1"})
    assert r.status_code == 405


async def test_every_value_type_and_swap_of_the_demo_profile_reads_correctly(stack: Stack) -> None:
    await add_device(stack, demo_device("plc1", stack.sim.port))
    sim_unit = stack.sim.config.unit(1)
    profile = (await stack.metadata.get("/api/v3/deviceprofile/name/Edgeplane-Demo-PLC")).json()["profile"]
    checked = 0
    for res in profile["deviceResources"]:
        attrs = res["attributes"]
        point = next(
            (
                p
                for p in sim_unit.points(attrs["primaryTable"].lower())
                if p.address == int(float(str(attrs["startingAddress"])))
            ),
            None,
        )
        if point is None or "." in str(attrs["startingAddress"]):
            continue
        got = readings(await stack.modbus.get(f"/api/v3/device/name/plc1/{res['name']}"))[res["name"]]
        expected = await stack.sim.get(1, point.name)
        scale = res["properties"].get("scale") or 1
        vt = res["properties"]["valueType"]
        if vt.startswith("Float"):
            assert float(got["value"]) == pytest.approx(expected * scale, rel=1e-5), res["name"]
        elif vt == "Bool":
            assert got["value"] == str(bool(expected)).lower(), res["name"]
        elif vt == "String":
            assert got["value"] == expected, res["name"]
        else:
            assert int(got["value"]) == expected, res["name"]
        checked += 1
    assert checked >= 25


async def test_commands_are_coalesced_into_few_requests(stack: Stack) -> None:
    await add_device(stack, demo_device("plc1", stack.sim.port))
    stack.sim.reset_request_count()
    r = await stack.modbus.get("/api/v3/device/name/plc1/PowerReadings")  # 4 resources, registers 4..11
    assert r.status_code == 200
    assert stack.sim.requests(1, 4) == 1  # one FC04 read for all of them


async def test_two_unit_ids_behind_one_endpoint_share_one_serialised_link(stack: Stack) -> None:
    await add_device(stack, demo_device("plc1", stack.sim.port, 1))
    await add_device(stack, demo_device("plc2", stack.sim.port, 2))
    stack.sim.set_delay(1, 0.05)
    stack.sim.set_delay(2, 0.05)
    loop = asyncio.get_running_loop()
    start = loop.time()
    results = await asyncio.gather(
        *[stack.modbus.get(f"/api/v3/device/name/plc{1 + i % 2}/FlowRate") for i in range(8)]
    )
    elapsed = loop.time() - start
    assert all(r.status_code == 200 for r in results)
    f1 = {readings(r)["FlowRate"]["value"] for r in results[0::2]}
    f2 = {readings(r)["FlowRate"]["value"] for r in results[1::2]}
    assert f1 == {str(await stack.sim.get(1, "flow_rate"))}
    assert f2 == {str(await stack.sim.get(2, "flow_rate"))}
    # Eight requests each delayed 50 ms by the server: serialised on one link they take at least 8 x 50 ms.
    assert elapsed >= 0.4
    assert stack.sim.requests(1) + stack.sim.requests(2) >= 8


async def test_exception_response_is_a_clear_error_that_does_not_mark_down(stack: Stack) -> None:
    await add_device(stack, demo_device("plc1", stack.sim.port))
    stack.sim.set_exception(1, 2)
    for _ in range(3):
        r = await stack.modbus.get("/api/v3/device/name/plc1/FlowRate")
        assert r.status_code == 502
        assert "Modbus exception 2 (illegal data address)" in r.json()["message"]
    dev = (await stack.metadata.get("/api/v3/device/name/plc1")).json()["device"]
    assert dev["operatingState"] == "UP"
    stack.sim.set_exception(1, None)
    assert (await stack.modbus.get("/api/v3/device/name/plc1/FlowRate")).status_code == 200


async def test_polling_recovers_after_the_plc_restarts(stack: Stack) -> None:
    events: list[dict[str, Any]] = []
    bus = NatsMessageBus(NatsSettings(url=stack.nats_url), name="listener")
    await bus.connect()

    async def on_event(env: MessageEnvelope) -> None:
        events.append(env.payload)

    sub = await bus.subscribe("edgex.events.device.device-modbus.Edgeplane-Demo-PLC.plc1.>", on_event)
    try:
        await add_device(
            stack, demo_device("plc1", stack.sim.port, autoEvents=[{"interval": "100ms", "sourceName": "FlowRate"}])
        )
        await wait_until(lambda: len(events) >= 2)
        await stack.sim.stop()

        async def state() -> str:
            return (await stack.metadata.get("/api/v3/device/name/plc1")).json()["device"]["operatingState"]

        await wait_until(lambda: _eq(state(), "DOWN"), timeout=15)
        r = await stack.modbus.get("/api/v3/device/name/plc1/FlowRate")
        assert r.status_code == 423
        seen = len(events)
        await stack.sim.start()
        await wait_until(lambda: _eq(state(), "UP"), timeout=20)
        await wait_until(lambda: len(events) > seen + 1, timeout=10)
        assert (await stack.modbus.get("/api/v3/device/name/plc1/FlowRate")).status_code == 200
    finally:
        await sub.unsubscribe()
        await bus.close()


async def _eq(awaitable: Any, expected: str) -> bool:
    return bool(await awaitable == expected)


async def test_locked_device_answers_423_and_events_carry_all_readings(stack: Stack) -> None:
    events: list[tuple[str, dict[str, Any]]] = []
    bus = NatsMessageBus(NatsSettings(url=stack.nats_url), name="listener")
    await bus.connect()

    async def on_event(env: MessageEnvelope) -> None:
        events.append((env.received_topic or "", env.payload))

    sub = await bus.subscribe("edgex.events.device.>", on_event)
    try:
        await add_device(
            stack,
            demo_device("plc1", stack.sim.port, autoEvents=[{"interval": "100ms", "sourceName": "PowerReadings"}]),
        )
        await wait_until(lambda: events)
        topic, event = events[0]
        assert topic == "edgex.events.device.device-modbus.Edgeplane-Demo-PLC.plc1.PowerReadings"
        assert event["deviceName"] == "plc1"
        assert len(event["readings"]) == 4
        r = await stack.metadata.patch(
            "/api/v3/device", json=[{"apiVersion": "v3", "device": {"name": "plc1", "adminState": "LOCKED"}}]
        )
        assert r.json()[0]["statusCode"] == 200

        async def locked() -> bool:
            return (await stack.modbus.get("/api/v3/device/name/plc1/FlowRate")).status_code == 423

        await wait_until(locked)
        r = await stack.modbus.get("/api/v3/device/name/plc1/FlowRate")
        assert "LOCKED" in r.json()["message"]
        await asyncio.sleep(0.3)
        n = len(events)
        await asyncio.sleep(0.4)
        assert len(events) == n  # a locked device is not polled
    finally:
        await sub.unsubscribe()
        await bus.close()


async def test_bus_command_request_reads_and_pushes(stack: Stack) -> None:
    await add_device(stack, demo_device("plc1", stack.sim.port))
    bus = NatsMessageBus(NatsSettings(url=stack.nats_url), name="cmd-client")
    await bus.connect()
    try:
        reply = await bus.request(
            "edgex.device.command.request.device-modbus.plc1.FlowRate.get", MessageEnvelope(), timeout=5
        )
        assert reply.error_code == 0
        assert reply.payload["event"]["readings"][0]["resourceName"] == "FlowRate"
        reply = await bus.request(
            "edgex.device.command.request.device-modbus.plc1.SpeedSetpoint.set",
            MessageEnvelope(payload={"SpeedSetpoint": "777"}),
            timeout=5,
        )
        assert reply.error_code == 0
        assert (await stack.sim.read_registers(1, "holding_registers", 1, 1)) == [777]
        reply = await bus.request(
            "edgex.device.command.request.device-modbus.nope.FlowRate.get", MessageEnvelope(), timeout=5
        )
        assert reply.error_code == 1
        assert reply.payload["statusCode"] == 404
    finally:
        await bus.close()


async def test_rtu_over_tcp_device_reads_and_writes(stack: Stack) -> None:
    """RTU frames (with CRC) through a TCP serial server: the same device on an RTU-framed simulator."""
    async with ModbusSimulator(load_config(DEMO_SIM), "127.0.0.1", 0, framer="rtu", autotick=False) as rtu_sim:
        body = demo_device("rtu-plc", rtu_sim.port)
        body["device"]["protocols"] = {"modbus-rtu-over-tcp": body["device"]["protocols"]["modbus-tcp"]}
        await add_device(stack, body)
        got = readings(await stack.modbus.get("/api/v3/device/name/rtu-plc/PowerReadings"))
        assert int(got["EnergyWh"]["value"]) == await rtu_sim.get(1, "energy_wh")
        r = await stack.modbus.put("/api/v3/device/name/rtu-plc/SpeedSetpoint", json={"SpeedSetpoint": "321"})
        assert r.status_code == 200, r.text
        assert await rtu_sim.read_registers(1, "holding_registers", 1, 1) == [321]
        assert rtu_sim.requests(1) >= 3
