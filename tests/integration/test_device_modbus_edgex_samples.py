"""EdgeX's own Modbus sample profiles, read from a real pymodbus server through device-modbus.

The simulator below lays out registers exactly where the sample profiles put their resources, with values
chosen so every transform the samples use shows: rawType Int16 → Float32 with scale 0.1, a bit inside a
holding register (startingAddress 10.10), command mappings, and strings of 1 and 5 registers."""

from __future__ import annotations

import struct
from collections.abc import AsyncIterator
from typing import Any

import pytest

from device_modbus.sim.config import parse_config
from tests.support.modbus import Stack, add_device, modbus_device, modbus_stack
from tests.support.reference import REFERENCE, needs_reference

pytestmark = needs_reference

SAMPLES = REFERENCE / "edgex-samples" / "modbus" if REFERENCE else None
PROFILE = "Test-Device-Modbus-Profile"
STRING_PROFILE = "Test-Device-Modbus-String-Profile"

SIM = parse_config(
    {
        "tick_interval": 1.0,
        "units": [
            {
                "unit_id": 1,
                "coils": [
                    {"name": "switch_a", "address": 0, "holds": True},
                    {"name": "switch_b", "address": 14, "holds": False},
                ],
                "input_registers": [
                    {"name": "string_a", "address": 1, "type": "string", "length": 1, "constant": "OK"},
                    {"name": "room_temp", "address": 3, "type": "int16", "constant": -52},
                ],
                "holding_registers": [
                    {"name": "operation_mode", "address": 1, "type": "int16", "holds": 2},
                    {"name": "fan_speed", "address": 2, "type": "int32", "holds": 3},
                    {"name": "temperature", "address": 5, "type": "int16", "holds": 215},
                    {"name": "status", "address": 10, "type": "uint16", "holds": 1 << 10},
                    {"name": "string_b", "address": 15, "type": "string", "length": 5, "holds": "edge!"},
                ],
            }
        ],
    }
)


@pytest.fixture
async def stack(nats_url: str, redis_url: str) -> AsyncIterator[Stack]:
    assert SAMPLES is not None
    profiles = [SAMPLES / "modbus.test.device.profile.yml", SAMPLES / "modbus.test.device.string.profile.yml"]
    async with modbus_stack(nats_url, redis_url, sim_config=SIM, profiles=profiles) as s:
        await add_device(s, modbus_device("hvac", PROFILE, s.sim.port), "SwitchA")
        await add_device(s, modbus_device("strings", STRING_PROFILE, s.sim.port), "StringA")
        yield s


async def read(stack: Stack, device: str, command: str) -> dict[str, dict[str, Any]]:
    r = await stack.modbus.get(f"/api/v3/device/name/{device}/{command}")
    assert r.status_code == 200, r.text
    return {x["resourceName"]: x for x in r.json()["event"]["readings"]}


async def test_sample_profile_reads_every_resource_correctly(stack: Stack) -> None:
    values = {
        name: (await read(stack, "hvac", name))[name]
        for name in (
            "SwitchA",
            "SwitchB",
            "OperationMode",
            "FanSpeed",
            "Temperature",
            "RoomTemperature",
            "CommunicationFailure",
        )
    }
    assert values["SwitchA"]["value"] == "true"
    assert values["SwitchB"]["value"] == "false"
    assert values["OperationMode"]["value"] == "2"
    assert values["FanSpeed"]["value"] == "3"
    assert values["Temperature"]["valueType"] == "Float32"
    assert float(values["Temperature"]["value"]) == pytest.approx(21.5)
    assert float(values["RoomTemperature"]["value"]) == pytest.approx(-5.2)
    assert values["CommunicationFailure"]["value"] == "true"  # bit 10 of holding register 10


async def test_sample_commands_apply_mappings_on_read_and_write(stack: Stack) -> None:
    got = await read(stack, "hvac", "HVACValues")
    assert got["OperationMode"]["value"] == "Auto"
    assert got["OperationMode"]["valueType"] == "String"
    assert got["FanSpeed"]["value"] == "Auto"
    assert float(got["Temperature"]["value"]) == pytest.approx(21.5)
    assert (await read(stack, "hvac", "Switch"))["SwitchA"]["value"] == "ON"

    r = await stack.modbus.put(
        "/api/v3/device/name/hvac/HVACValues", json={"OperationMode": "Dry", "FanSpeed": "High", "Temperature": "23.4"}
    )
    assert r.status_code == 200, r.text
    regs = await stack.sim.read_registers(1, "holding_registers", 1, 5)
    assert regs[0] == 3  # Dry
    assert struct.unpack(">i", struct.pack(">HH", regs[1], regs[2]))[0] == 2  # High
    assert struct.unpack(">h", struct.pack(">H", regs[4]))[0] == 234  # 23.4 / 0.1

    r = await stack.modbus.put("/api/v3/device/name/hvac/Switch", json={"SwitchA": "OFF", "SwitchB": "ON"})
    assert r.status_code == 200, r.text
    assert await stack.sim.read_bits(1, "coils", 0, 1) == [False]
    assert await stack.sim.read_bits(1, "coils", 14, 1) == [True]


async def test_sample_minimum_maximum_are_enforced(stack: Stack) -> None:
    r = await stack.modbus.put("/api/v3/device/name/hvac/OperationMode", json={"OperationMode": "12"})
    assert r.status_code == 400
    assert "maximum" in r.json()["message"]
    assert await stack.sim.read_registers(1, "holding_registers", 1, 1) == [2]


async def test_string_sample_profile_reads_and_writes(stack: Stack) -> None:
    assert (await read(stack, "strings", "ReadString"))["StringA"]["value"] == "OK"
    assert (await read(stack, "strings", "StringB"))["StringB"]["value"] == "edge!"
    r = await stack.modbus.put("/api/v3/device/name/strings/WriteString", json={"StringB": "hi"})
    assert r.status_code == 200, r.text
    assert (await read(stack, "strings", "StringB"))["StringB"]["value"] == "hi"
    r = await stack.modbus.put("/api/v3/device/name/strings/WriteString", json={"StringB": "much too long"})
    assert r.status_code == 400
