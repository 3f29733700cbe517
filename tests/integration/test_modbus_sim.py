"""The Modbus PLC simulator against a real pymodbus client: encoding of every type and swap (decoded here
with `struct`, independently of the simulator's codec), behaviours across ticks, client writes, unit ids,
request counting, stop/restart, faults, RTU framing, the CLI, and the demo config/profile/device files."""

from __future__ import annotations

import asyncio
import itertools
import math
import socket
import struct
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import yaml
from pymodbus.client import AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU

import device_modbus
from device_modbus.sim import (
    ModbusSimulator,
    PointType,
    RegisterPoint,
    SimConfig,
    SimConfigError,
    SimulatorError,
    Table,
    load_config,
    parse_config,
)
from device_modbus.sim.__main__ import main as sim_main

RES = Path(device_modbus.__file__).parent / "res"
DEMO_SIM = RES / "sim" / "demo-plc.yaml"
DEMO_PROFILE = RES / "profiles" / "edgeplane-demo-plc.profile.yaml"
DEMO_DEVICES = RES / "devices" / "demo-plc.devices.yaml"

ClientFactory = Callable[..., Awaitable[AsyncModbusTcpClient]]

STRUCT = {
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "float32": "f",
    "float64": "d",
}
SAMPLES: dict[str, int | float] = {
    "int16": -12345,
    "uint16": 54321,
    "int32": -2_000_000_001,
    "uint32": 4_000_000_001,
    "int64": -9_000_000_000_000_000_001,
    "uint64": 18_000_000_000_000_000_001,
    "float32": -1234.5,
    "float64": math.pi,
}


def unpack(kind: str, registers: Sequence[int], *, byte_swap: bool = False, word_swap: bool = False) -> Any:
    """Decode registers the way an EdgeX-style reader would: undo the swaps, then big-endian struct."""
    words = [r.to_bytes(2, "big") for r in registers]
    if word_swap:
        words = words[::-1]
    if byte_swap:
        words = [w[1:] + w[:1] for w in words]
    return struct.unpack(">" + STRUCT[kind], b"".join(words))[0]


def config(*units: dict[str, Any], tick_interval: float = 1.0) -> SimConfig:
    return parse_config({"tick_interval": tick_interval, "units": list(units)})


@pytest.fixture
async def connect() -> AsyncIterator[ClientFactory]:
    """Open pymodbus clients to a simulator; all are closed after the test."""
    clients: list[AsyncModbusTcpClient] = []

    async def open_client(
        port: int, *, framer: FramerType = FramerType.SOCKET, timeout: float = 2.0
    ) -> AsyncModbusTcpClient:
        client = AsyncModbusTcpClient("127.0.0.1", port=port, framer=framer, timeout=timeout, retries=0)
        clients.append(client)
        assert await client.connect(), f"cannot connect to the simulator on port {port}"
        return client

    yield open_client
    for client in clients:
        client.close()


async def eventually(condition: Callable[[], Awaitable[bool]], timeout: float = 10) -> None:
    """Poll until the condition holds (fails the test after `timeout` seconds)."""
    async with asyncio.timeout(timeout):
        while not await condition():  # noqa: ASYNC110 - the state lives in pymodbus/the server, no event to await
            await asyncio.sleep(0.01)


def ok(response: ModbusPDU) -> ModbusPDU:
    assert not response.isError(), f"unexpected error response {response}"
    return response


# --- every type and swap ----------------------------------------------------------------------------------

SWAPS = [(False, False), (True, False), (False, True), (True, True)]


def _typed_points() -> tuple[list[dict[str, Any]], list[tuple[str, int, str, bool, bool, int]]]:
    points: list[dict[str, Any]] = []
    expected: list[tuple[str, int, str, bool, bool, int]] = []
    address = 0
    for kind, value in SAMPLES.items():
        size = struct.calcsize(">" + STRUCT[kind]) // 2
        for byte_swap, word_swap in SWAPS:
            if word_swap and size == 1:
                continue  # word order means nothing in one register
            name = f"{kind}_{int(byte_swap)}{int(word_swap)}"
            points.append(
                {
                    "name": name,
                    "address": address,
                    "type": kind,
                    "byte_swap": byte_swap,
                    "word_swap": word_swap,
                    "constant": value,
                }
            )
            expected.append((name, address, kind, byte_swap, word_swap, size))
            address += size
    return points, expected


async def test_every_type_and_swap_reads_back_as_packed_by_struct(connect: ClientFactory) -> None:
    points, expected = _typed_points()
    text_at = expected[-1][1] + expected[-1][5] + 3  # after a gap of 3 registers
    points.append({"name": "label", "address": text_at, "type": "string", "length": 5, "constant": "Tank-07"})
    points.append(
        {
            "name": "label_bs",
            "address": text_at + 5,
            "type": "string",
            "length": 2,
            "byte_swap": True,
            "constant": "AbC",
        }
    )
    holding = [{**p, "name": "h_" + p["name"]} for p in points]  # names are unique per unit
    cfg = config({"unit_id": 1, "input_registers": points, "holding_registers": holding})
    async with ModbusSimulator(cfg, port=0, autotick=False) as sim:
        client = await connect(sim.port)
        for read in (client.read_input_registers, client.read_holding_registers):
            for name, address, kind, byte_swap, word_swap, size in expected:
                registers = ok(await read(address, count=size, device_id=1)).registers
                got = unpack(kind, registers, byte_swap=byte_swap, word_swap=word_swap)
                want = SAMPLES[kind]
                assert got == want, f"{name}: registers {registers} decode to {got}, expected {want}"
            text = ok(await read(text_at, count=5, device_id=1)).registers
            assert b"".join(r.to_bytes(2, "big") for r in text) == b"Tank-07\0\0\0"
            swapped = ok(await read(text_at + 5, count=2, device_id=1)).registers
            assert swapped == [int.from_bytes(b"bA", "big"), int.from_bytes(b"\0C", "big")]
            gap = ok(await read(text_at - 3, count=3, device_id=1)).registers
            assert gap == [0, 0, 0], "registers between points read as zero (fill_gaps)"
        assert await sim.get(1, "label") == "Tank-07"
        assert await sim.get(1, "label_bs") == "AbC"


async def test_float32_byte_orders_match_known_registers(connect: ClientFactory) -> None:
    # 1.0f is 0x3F800000: ABCD, BADC (isByteSwap), CDAB (isWordSwap), DCBA (both).
    points = [
        {"name": f"one_{bs}{ws}", "address": 2 * i, "type": "float32", "byte_swap": bs, "word_swap": ws, "constant": 1}
        for i, (bs, ws) in enumerate(SWAPS)
    ]
    async with ModbusSimulator(config({"unit_id": 3, "input_registers": points}), port=0, autotick=False) as sim:
        client = await connect(sim.port)
        registers = ok(await client.read_input_registers(0, count=8, device_id=3)).registers
    assert registers == [0x3F80, 0x0000, 0x803F, 0x0000, 0x0000, 0x3F80, 0x0000, 0x803F]


async def test_coils_and_discrete_inputs(connect: ClientFactory) -> None:
    cfg = config(
        {
            "unit_id": 1,
            "coils": [
                {"name": "c3", "address": 3, "holds": True},
                {"name": "c20", "address": 20, "holds": False},
                {"name": "c21", "address": 21, "constant": True},
            ],
            "discrete_inputs": [{"name": "d0", "address": 0, "constant": True}],
        }
    )
    async with ModbusSimulator(cfg, port=0, autotick=False) as sim:
        client = await connect(sim.port)
        bits = ok(await client.read_coils(0, count=24, device_id=1)).bits
        assert [i for i, b in enumerate(bits[:24]) if b] == [3, 21]
        assert ok(await client.read_discrete_inputs(0, count=1, device_id=1)).bits[0] is True
        # pymodbus serves bit tables in 16-bit words: coils 0-31 exist, 32 does not.
        assert (await client.read_coils(32, count=1, device_id=1)).exception_code == 2
        assert await sim.read_bits(1, "coils", 20, 2) == [False, True]


# --- behaviours ---------------------------------------------------------------------------------------------


def _behaviour_config(tick_interval: float = 1.0) -> SimConfig:
    return config(
        {
            "unit_id": 1,
            "coils": [{"name": "blink", "address": 0, "toggle": {"every": 2}}],
            "holding_registers": [
                {"name": "ramp_up", "address": 0, "type": "int16", "ramp": {"min": 0, "max": 10, "step": 3}},
                {"name": "ramp_down", "address": 1, "type": "float32", "ramp": {"min": 0, "max": 1, "step": -0.25}},
                {"name": "count16", "address": 3, "type": "uint16", "counter": {"start": 65534}},
                {"name": "count_signed", "address": 4, "type": "int16", "counter": {"start": 32767}},
                {"name": "count_mod", "address": 5, "type": "uint16", "counter": {"step": 2, "wrap": 5}},
                {
                    "name": "wave",
                    "address": 6,
                    "type": "float32",
                    "sine": {"amplitude": 10, "period_s": 4, "offset": 100},
                },
                {
                    "name": "walk",
                    "address": 8,
                    "type": "float32",
                    "random_walk": {"min": 0, "max": 10, "step": 1, "seed": 5},
                },
                {"name": "fixed", "address": 10, "type": "uint32", "constant": 123456},
            ],
        },
        tick_interval=tick_interval,
    )


async def test_behaviours_follow_their_definition_tick_by_tick(connect: ClientFactory) -> None:
    async with ModbusSimulator(_behaviour_config(), port=0, autotick=False) as sim:
        client = await connect(sim.port)
        seen: dict[str, list[Any]] = {
            k: [] for k in ("ramp_up", "ramp_down", "count16", "signed", "mod", "wave", "walk", "blink")
        }
        for _ in range(6):
            r = ok(await client.read_holding_registers(0, count=12, device_id=1)).registers
            seen["ramp_up"].append(unpack("int16", r[0:1]))
            seen["ramp_down"].append(unpack("float32", r[1:3]))
            seen["count16"].append(r[3])
            seen["signed"].append(unpack("int16", r[4:5]))
            seen["mod"].append(r[5])
            seen["wave"].append(unpack("float32", r[6:8]))
            seen["walk"].append(unpack("float32", r[8:10]))
            assert unpack("uint32", r[10:12]) == 123456
            seen["blink"].append(ok(await client.read_coils(0, count=1, device_id=1)).bits[0])
            await sim.tick()
        assert sim.ticks == 6
    assert seen["ramp_up"] == [0, 3, 6, 9, 0, 3]  # sawtooth: restarts at min once it would pass max
    assert seen["ramp_down"] == [1.0, 0.75, 0.5, 0.25, 0.0, 1.0]
    assert seen["count16"] == [65534, 65535, 0, 1, 2, 3]  # wraps like a uint16
    assert seen["signed"] == [32767, -32768, -32767, -32766, -32765, -32764]
    assert seen["mod"] == [0, 2, 4, 1, 3, 0]
    assert seen["wave"] == pytest.approx([100, 110, 100, 90, 100, 110], abs=1e-4)  # t = ticks * 1 s
    assert seen["blink"] == [False, False, True, True, False, False]
    walk = seen["walk"]
    assert all(0 <= v <= 10 for v in walk)
    assert all(abs(b - a) <= 1 + 1e-6 for a, b in itertools.pairwise(walk))
    assert len(set(walk)) > 1


async def test_random_walk_with_a_seed_repeats() -> None:
    runs = []
    for _ in range(2):
        async with ModbusSimulator(_behaviour_config(), port=0, autotick=False) as sim:
            values = []
            for _ in range(5):
                await sim.tick()
                values.append(await sim.get(1, "walk"))
            runs.append(values)
    assert runs[0] == runs[1]


async def test_tick_task_updates_values_in_the_background(connect: ClientFactory) -> None:
    async with ModbusSimulator(_behaviour_config(tick_interval=0.02), port=0) as sim:
        client = await connect(sim.port)

        async def counted() -> bool:
            return ok(await client.read_holding_registers(5, count=1, device_id=1)).registers[0] != 0

        await eventually(counted)
        assert sim.ticks >= 1
        ticks = sim.ticks
    await asyncio.sleep(0.1)
    assert sim.ticks == ticks, "stop() ends the tick task"


# --- writes ------------------------------------------------------------------------------------------------


def _writable_config() -> SimConfig:
    return config(
        {
            "unit_id": 1,
            "coils": [
                {"name": "run", "address": 0},
                {"name": "horn", "address": 1, "toggle": {"every": 1}},
            ],
            "holding_registers": [
                {"name": "setpoint", "address": 0, "type": "float32", "word_swap": True, "holds": 21.5},
                {"name": "mode", "address": 2, "type": "int16"},
                {"name": "operator", "address": 3, "type": "string", "length": 4, "holds": "anna"},
                {"name": "limit", "address": 7, "type": "uint16", "constant": 50},
                {"name": "speed", "address": 8, "type": "uint16", "ramp": {"min": 0, "max": 100, "step": 1}},
                {"name": "trim", "address": 9, "type": "uint16", "writable": True, "counter": {}},
            ],
        }
    )


async def test_holding_registers_and_coils_hold_what_a_client_writes(connect: ClientFactory) -> None:
    async with ModbusSimulator(_writable_config(), port=0, autotick=False) as sim:
        client = await connect(sim.port)
        hi, lo = struct.unpack(">HH", struct.pack(">f", -3.25))
        ok(await client.write_registers(0, [lo, hi], device_id=1))  # word-swapped float
        ok(await client.write_register(2, 0xFFFE, device_id=1))
        ok(await client.write_registers(3, list(struct.unpack(">4H", b"bob\0\0\0\0\0")), device_id=1))
        ok(await client.write_coil(0, True, device_id=1))
        await sim.tick(3)  # holds points keep the written value across ticks

        registers = ok(await client.read_holding_registers(0, count=7, device_id=1)).registers
        assert unpack("float32", registers[0:2], word_swap=True) == -3.25
        assert unpack("int16", registers[2:3]) == -2
        assert ok(await client.read_coils(0, count=1, device_id=1)).bits[0] is True
        # Read back on the server side, without a client.
        assert await sim.get(1, "setpoint") == -3.25
        assert await sim.get(1, "mode") == -2
        assert await sim.get(1, "operator") == "bob"
        assert await sim.get(1, "run") is True
        assert await sim.read_registers(1, Table.HOLDING_REGISTERS, 0, 2) == [lo, hi]

        # A writable behaviour point takes the write until the next tick overwrites it.
        ok(await client.write_register(9, 500, device_id=1))
        assert await sim.get(1, "trim") == 500
        await sim.tick()
        assert await sim.get(1, "trim") == 4


async def test_writes_to_read_only_points_answer_illegal_address(connect: ClientFactory) -> None:
    async with ModbusSimulator(_writable_config(), port=0, autotick=False) as sim:
        client = await connect(sim.port)
        assert (await client.write_register(7, 1, device_id=1)).exception_code == 2  # constant
        assert (await client.write_register(8, 1, device_id=1)).exception_code == 2  # ramp
        assert (await client.write_registers(6, [1, 1], device_id=1)).exception_code == 2  # spans 'limit'
        assert (await client.write_coil(1, True, device_id=1)).exception_code == 2  # toggle
        assert await sim.get(1, "limit") == 50
        assert await sim.get(1, "operator") == "anna", "a refused multi-register write changes nothing"


async def test_set_stores_a_value_server_side(connect: ClientFactory) -> None:
    async with ModbusSimulator(_writable_config(), port=0, autotick=False) as sim:
        client = await connect(sim.port)
        await sim.set(1, "limit", 75)
        await sim.set(1, "operator", "zoë")
        assert ok(await client.read_holding_registers(7, count=1, device_id=1)).registers == [75]
        assert await sim.get(1, "operator") == "zoë"
        with pytest.raises(SimulatorError):
            await sim.get(1, "nope")
        with pytest.raises(SimulatorError):
            await sim.read_registers(1, "holding_registers", 100, 1)


# --- units, errors and faults -------------------------------------------------------------------------------


def _two_units() -> SimConfig:
    layout = [{"name": "value", "address": 0, "type": "uint16"}, {"name": "gain", "address": 1, "type": "float32"}]
    return config(
        {"unit_id": 1, "holding_registers": layout, "coils": [{"name": "run", "address": 0}]},
        {"unit_id": 2, "holding_registers": [{**p, "holds": 7} for p in layout]},
    )


async def test_two_unit_ids_are_independent(connect: ClientFactory) -> None:
    async with ModbusSimulator(_two_units(), port=0, autotick=False) as sim:
        client = await connect(sim.port)
        assert ok(await client.read_holding_registers(0, count=1, device_id=1)).registers == [0]
        assert ok(await client.read_holding_registers(0, count=1, device_id=2)).registers == [7]
        ok(await client.write_register(0, 1111, device_id=1))
        ok(await client.write_register(0, 2222, device_id=2))
        assert ok(await client.read_holding_registers(0, count=1, device_id=1)).registers == [1111]
        assert ok(await client.read_holding_registers(0, count=1, device_id=2)).registers == [2222]
        assert unpack("float32", ok(await client.read_holding_registers(1, count=2, device_id=2)).registers) == 7.0
        # Unit 2 has no coils (exception 2); unit 9 is not there at all (0x0B, as a gateway answers).
        assert (await client.read_coils(0, count=1, device_id=2)).exception_code == 2
        assert (await client.read_holding_registers(0, count=1, device_id=9)).exception_code == 0x0B
        assert (await client.read_holding_registers(3, count=1, device_id=1)).exception_code == 2


async def test_unmapped_gaps_answer_illegal_address_without_fill_gaps(connect: ClientFactory) -> None:
    cfg = config(
        {
            "unit_id": 1,
            "fill_gaps": False,
            "holding_registers": [
                {"name": "a", "address": 0, "type": "uint16"},
                {"name": "b", "address": 5, "type": "uint16", "holds": 9},
            ],
        }
    )
    async with ModbusSimulator(cfg, port=0, autotick=False) as sim:
        client = await connect(sim.port)
        assert (await client.read_holding_registers(0, count=6, device_id=1)).exception_code == 2
        assert ok(await client.read_holding_registers(5, count=1, device_id=1)).registers == [9]


async def test_forced_exception_and_delay(connect: ClientFactory) -> None:
    async with ModbusSimulator(_two_units(), port=0, autotick=False) as sim:
        client = await connect(sim.port)
        sim.set_exception(1, 6)  # device busy
        assert (await client.read_holding_registers(0, count=1, device_id=1)).exception_code == 6
        assert (await client.write_register(0, 5, device_id=1)).exception_code == 6
        assert ok(await client.read_holding_registers(0, count=1, device_id=2)).registers == [7]
        assert await sim.get(1, "value") == 0, "the simulator's own reads are not refused"
        sim.set_exception(1, None)
        assert ok(await client.read_holding_registers(0, count=1, device_id=1)).registers == [0]

        sim.set_delay(2, 1.0)
        slow = await connect(sim.port, timeout=0.2)
        with pytest.raises(ModbusIOException):
            await slow.read_holding_registers(0, count=1, device_id=2)
        sim.set_delay(2, None)
        with pytest.raises(SimulatorError):
            sim.set_exception(5, 2)


async def test_request_count_by_unit_and_function_code(connect: ClientFactory) -> None:
    async with ModbusSimulator(_two_units(), port=0, autotick=False) as sim:
        client = await connect(sim.port)
        for _ in range(3):
            ok(await client.read_holding_registers(0, count=3, device_id=1))
        ok(await client.read_holding_registers(0, count=1, device_id=2))
        ok(await client.write_register(0, 1, device_id=2))
        await client.read_holding_registers(40, count=1, device_id=2)  # an exception answer still counts
        ok(await client.read_coils(0, count=1, device_id=1))
        await sim.get(1, "value")  # the simulator's own access is not a request
        await sim.tick()
        assert sim.request_count == {(1, 3): 3, (2, 3): 2, (2, 6): 1, (1, 1): 1}
        assert sim.requests(unit_id=2) == 3
        assert sim.requests(function_code=3) == 5
        assert sim.requests() == 7
        sim.reset_request_count()
        assert sim.requests() == 0


async def test_rtu_framing_over_tcp(connect: ClientFactory) -> None:
    async with ModbusSimulator(_two_units(), port=0, framer="rtu", autotick=False) as sim:
        client = await connect(sim.port, framer=FramerType.RTU)
        assert ok(await client.read_holding_registers(0, count=1, device_id=2)).registers == [7]
        ok(await client.write_register(0, 42, device_id=1))
        assert await sim.get(1, "value") == 42
        assert sim.request_count[1, 6] == 1


# --- stop and restart ---------------------------------------------------------------------------------------


async def test_stop_and_restart_on_the_same_port_keeps_values(connect: ClientFactory) -> None:
    sim = ModbusSimulator(_two_units(), port=0, autotick=False)
    await sim.start()
    try:
        port = sim.port
        client = await connect(port)
        ok(await client.write_register(0, 4321, device_id=1))
        await sim.stop()
        assert not sim.running

        async def dropped() -> bool:  # the server closed the client's connection
            return not client.connected

        await eventually(dropped)
        with pytest.raises(ConnectionException):
            await client.read_holding_registers(0, count=1, device_id=1)
        refused = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=0.5, retries=0)
        assert not await refused.connect()
        refused.close()
        # While stopped the last state stays readable and settable.
        assert await sim.get(1, "value") == 4321
        await sim.set(2, "value", 8)

        await sim.start()
        assert sim.port == port
        again = await connect(port)
        assert ok(await again.read_holding_registers(0, count=1, device_id=1)).registers == [4321]
        assert ok(await again.read_holding_registers(0, count=1, device_id=2)).registers == [8]
    finally:
        await sim.stop()


async def test_a_taken_port_is_an_os_error() -> None:
    async with ModbusSimulator(_two_units(), port=0, autotick=False) as first:
        second = ModbusSimulator(_two_units(), port=first.port, autotick=False)
        with pytest.raises(OSError, match=f"cannot listen on 127.0.0.1:{first.port}"):
            await second.start()
        assert not second.running


# --- configuration ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "message"),
    [
        (
            {
                "unit_id": 1,
                "holding_registers": [
                    {"name": "x", "address": 0, "type": "int32"},
                    {"name": "y", "address": 1, "type": "int16"},
                ],
            },
            "units[0] (unit 1): holding_registers[1] ('y') overlaps holding_registers[0] ('x')",
        ),
        (
            {
                "unit_id": 1,
                "holding_registers": [
                    {"name": "x", "address": 0, "type": "int16", "ramp": {"min": 0, "max": 1e6, "step": 1}}
                ],
            },
            "units[0] (unit 1).holding_registers[0] ('x'): the values [0.0, 1000000.0] do not fit the int16 range",
        ),
        (
            {
                "unit_id": 1,
                "input_registers": [
                    {"name": "x", "address": 0, "type": "int16", "sine": {"amplitude": 1, "period_s": 0}}
                ],
            },
            "units[0] (unit 1).input_registers[0] ('x').sine.period_s: Input should be greater than 0",
        ),
        (
            {"unit_id": 1, "coils": [{"name": "x", "address": 0, "type": "float32"}]},
            "units[0] (unit 1).coils[0] ('x').type: coils and discrete_inputs hold bool points only",
        ),
        (
            {
                "unit_id": 1,
                "holding_registers": [{"name": "x", "address": 0, "type": "string", "length": 1, "holds": "abc"}],
            },
            "'abc' needs 3 bytes, the point holds 2",
        ),
        (
            {"unit_id": 1, "holding_registers": [{"name": "x", "address": 0, "type": "uint16", "word_swap": True}]},
            "word_swap needs a 32- or 64-bit type",
        ),
        (
            {
                "unit_id": 1,
                "holding_registers": [
                    {"name": "x", "address": 0, "type": "int16", "ramp": {"min": 0, "max": 1, "step": 1}, "constant": 1}
                ],
            },
            "give one behaviour, not constant and ramp",
        ),
        (
            {"unit_id": 1, "input_registers": [{"name": "x", "address": 0, "type": "int16", "writable": True}]},
            "input_registers cannot be written by clients",
        ),
        (
            {"unit_id": 1, "holding_registers": [{"name": "x", "adress": 0, "type": "int16"}]},
            "units[0] (unit 1).holding_registers[0] ('x').adress: Extra inputs are not permitted",
        ),
        (
            {"unit_id": 1, "holding_registers": [{"name": "x", "address": 0, "type": "uint16", "holds": -1}]},
            "holds: -1 is outside the uint16 range [0, 65535]",
        ),
    ],
)
def test_invalid_configuration_names_the_point(unit: dict[str, Any], message: str) -> None:
    with pytest.raises(SimConfigError) as err:
        config(unit)
    assert message in str(err.value)


def test_duplicate_unit_ids_are_refused() -> None:
    with pytest.raises(SimConfigError, match=r"unit ids declared more than once: \[4\]"):
        config({"unit_id": 4}, {"unit_id": 4})


def test_cli_refuses_a_bad_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("units:\n  - unit_id: 1\n    coils: [{name: a, address: -1}]\n")
    assert sim_main(["--config", str(bad), "--no-log-json"]) == 2
    assert (
        "units[0] (unit 1).coils[0] ('a').address: Input should be greater than or equal to 0"
        in capsys.readouterr().err
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_cli_serves_the_demo_plc_until_terminated(connect: ClientFactory) -> None:
    port = _free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "device_modbus.sim",
        "--config",
        str(DEMO_SIM),
        "--port",
        str(port),
        "--tick-interval",
        "0.05",
        "--no-log-json",
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(20):
            while True:
                probe = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
                up = await probe.connect()
                probe.close()
                if up:
                    break
                assert proc.returncode is None, "the simulator exited"
                await asyncio.sleep(0.1)
        client = await connect(port)
        text = ok(await client.read_input_registers(32, count=8, device_id=1)).registers
        assert b"".join(r.to_bytes(2, "big") for r in text).rstrip(b"\0") == b"EP-SIM 1.0.3"
    finally:
        proc.terminate()
        async with asyncio.timeout(10):
            _, stderr = await proc.communicate()
    assert proc.returncode == 0, stderr.decode()
    assert f"listening on 127.0.0.1:{port}" in stderr.decode()


# --- the demo files -----------------------------------------------------------------------------------------

_PRIMARY_TABLES = {
    "COILS": Table.COILS,
    "DISCRETE_INPUTS": Table.DISCRETE_INPUTS,
    "INPUT_REGISTERS": Table.INPUT_REGISTERS,
    "HOLDING_REGISTERS": Table.HOLDING_REGISTERS,
}


def _address(value: Any) -> tuple[int, int | None]:
    register, _, bit = str(value).partition(".")
    return int(register), int(bit) if bit else None


def test_demo_profile_matches_the_simulator_points() -> None:
    sim = load_config(DEMO_SIM)
    profile = yaml.safe_load(DEMO_PROFILE.read_text())
    assert profile["name"] == "Edgeplane-Demo-PLC"
    assert {u.unit_id for u in sim.units} == {1, 2}
    for unit in sim.units:
        covered: set[str] = set()
        for resource in profile["deviceResources"]:
            attrs, props, name = resource["attributes"], resource["properties"], resource["name"]
            table = _PRIMARY_TABLES[attrs["primaryTable"]]
            address, bit = _address(attrs["startingAddress"])
            matches = [p for p in unit.points(table) if p.address == address]
            assert matches, f"unit {unit.unit_id}: no {table.value} point at {address} for {name}"
            point = matches[0]
            covered.add(point.name)
            value_type = props["valueType"].lower()
            if bit is not None:
                assert value_type == "bool"
                assert point.type in (PointType.UINT16, PointType.INT16), f"{name}: bit of a 16-bit register"
            elif table.is_bits:
                assert value_type == "bool", name
                assert point.type is PointType.BOOL, name
            else:
                assert isinstance(point, RegisterPoint)
                assert point.type.value == attrs.get("rawType", props["valueType"]).lower(), name
                assert point.byte_swap == attrs.get("isByteSwap", False), f"{name}: isByteSwap"
                assert point.word_swap == attrs.get("isWordSwap", False), f"{name}: isWordSwap"
                if point.type is PointType.STRING:
                    assert point.length == attrs["stringRegisterSize"], name
            writable = "W" in props["readWrite"]
            assert writable == point.is_writable(table), f"{name}: readWrite {props['readWrite']}"
        every_point = {p.name for t in Table for p in unit.points(t)}
        assert covered == every_point, f"unit {unit.unit_id}: points without a resource: {every_point - covered}"


def test_demo_profile_and_device_are_valid_edgex_documents() -> None:
    from core_metadata.application.validation import validate_profile
    from edgeplane_common.models import Device, DeviceProfile

    profile = DeviceProfile.model_validate(yaml.safe_load(DEMO_PROFILE.read_text()))
    validate_profile(profile)
    kinds = {p.type for u in load_config(DEMO_SIM).units for t in Table for p in u.points(t)}
    assert kinds == set(PointType), "the demo exercises every value type"

    from edgeplane_sdk.provisioning import device_definitions, load_file

    (device,) = [Device.model_validate(d) for d in device_definitions(load_file(DEMO_DEVICES))]
    assert device.name == "demo-plc"
    assert device.profile_name == profile.name
    assert device.service_name == "device-modbus"
    tcp = device.protocols["modbus-tcp"]
    assert (tcp["Address"], tcp["Port"], tcp["UnitID"]) == ("127.0.0.1", 5020, 1)
    sources = {r.name for r in profile.device_resources} | {c.name for c in profile.device_commands}
    assert {a.source_name for a in device.auto_events} <= sources
    assert any(a.on_change for a in device.auto_events)


async def test_demo_plc_serves_its_initial_values(connect: ClientFactory) -> None:
    async with ModbusSimulator(load_config(DEMO_SIM), port=0, autotick=False) as sim:
        client = await connect(sim.port)
        one = ok(await client.read_holding_registers(0, count=33, device_id=1)).registers
        two = ok(await client.read_holding_registers(0, count=33, device_id=2)).registers
        assert unpack("float32", one[2:4]) == 21.5
        assert unpack("int32", one[4:6], word_swap=True) == 250
        assert unpack("uint32", one[6:8], byte_swap=True) == 42
        assert unpack("float64", one[16:20], byte_swap=True, word_swap=True) == 1.000125
        assert unpack("int64", two[8:12]) == 9007199254740993
        assert unpack("uint32", two[6:8], byte_swap=True) == 3_000_000_000
        await sim.tick(8)
        status = ok(await client.read_holding_registers(20, count=1, device_id=1)).registers[0]
        assert status == 8
        assert status >> 3 & 1, "AlarmActive (bit 3 of register 20) is set after 8 ticks"
