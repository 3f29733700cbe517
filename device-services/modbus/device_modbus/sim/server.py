"""The simulator runtime: a pymodbus (3.16) TCP server over SimDevice/SimData plus a tick task.

How it sits on pymodbus 3.16:

- Each configured unit id is one `SimDevice` with four separate tables (coils, discrete inputs, holding,
  input registers). Points are stored as plain registers/bits (`DataType.REGISTERS`/`BITS`): the encoding
  and the swaps are ours (config.py), so pymodbus never reinterprets them. SimDevice addresses are the
  protocol addresses (0-based); the "+1" offset only exists in the deprecated ModbusSequentialDataBlock.
- The server's own `async_getValues`/`async_setValues` (added to the server when the datastores lost
  theirs; a 3.16 device context has no getValues) are the only way in: the tick writes through them and
  `get`/`read_*` read back through them, so what we report is what a client would read. While stopped,
  the last state is kept in an image and served again on restart.
- Requests are counted in `trace_pdu` (called once per decoded request, before it reaches the datastore,
  so exception answers count too). Read-only points, forced exceptions and delays live in the SimDevice
  `action` hook, which pymodbus calls for client requests and for our own get/set calls alike; a context
  variable tells ours apart.
- pymodbus answers a unit id it does not know with its catch-all unit 0 (or a KeyError turned into
  "device failure"). Unless unit 0 is configured, a catch-all unit answers 0x0B (gateway target failed to
  respond), which is what a real TCP gateway says for an absent serial device.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
from collections import Counter as CounterDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Literal, Self, cast

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.pdu import ModbusPDU
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimAction, SimData, SimDevice

from device_modbus.sim.config import (
    BitPoint,
    Counter,
    PointType,
    Ramp,
    RandomWalk,
    RegisterPoint,
    SimConfig,
    Sine,
    Table,
    Toggle,
    Unit,
    Value,
    sine_value,
)

log = logging.getLogger(__name__)

Framer = Literal["socket", "rtu"]

WRITE_FUNCTION_CODES = frozenset({5, 6, 15, 16, 22, 23})
_TABLE_BY_FC = {
    1: Table.COILS,
    5: Table.COILS,
    15: Table.COILS,
    2: Table.DISCRETE_INPUTS,
    4: Table.INPUT_REGISTERS,
    3: Table.HOLDING_REGISTERS,
    6: Table.HOLDING_REGISTERS,
    16: Table.HOLDING_REGISTERS,
    22: Table.HOLDING_REGISTERS,
    23: Table.HOLDING_REGISTERS,
}

# True while the simulator itself reads or writes the datastore (tick, get/set): the action hook must
# then neither refuse, delay nor fail the access. A ContextVar, because client requests run in their own
# tasks whose context never sees our setting.
_internal: contextvars.ContextVar[bool] = contextvars.ContextVar("modbus_sim_internal", default=False)


class SimulatorError(LookupError):
    """A simulator read/write named a unit, point or address the simulator does not serve."""


@contextlib.contextmanager
def _as_simulator() -> Iterator[None]:
    token = _internal.set(True)
    try:
        yield
    finally:
        _internal.reset(token)


@dataclass
class _TableState:
    """What one table of one unit serves: addresses, contents while stopped, client-read-only addresses."""

    table: Table
    image: dict[int, int | bool]
    """Every served address → register/bit. The datastore's contents are copied back here on stop."""
    read_only: set[int] = field(default_factory=set)
    placeholder: bool = False
    """pymodbus needs a non-empty table; an unused table gets one bit/register that answers exception 2."""

    def runs(self) -> list[tuple[int, int]]:
        """(start, count) of consecutive served addresses."""
        out: list[tuple[int, int]] = []
        for address in sorted(self.image):
            if out and out[-1][0] + out[-1][1] == address:
                out[-1] = (out[-1][0], out[-1][1] + 1)
            else:
                out.append((address, 1))
        return out

    def simdata(self) -> list[SimData]:
        if self.placeholder and self.table.is_bits:
            return [SimData(0, values=[False], datatype=DataType.BITS)]
        if self.placeholder:
            return [SimData(0, datatype=DataType.INVALID)]
        blocks: list[SimData] = []
        for start, count in self.runs():
            values = [self.image[a] for a in range(start, start + count)]
            if self.table.is_bits:
                blocks.append(SimData(start, values=[bool(v) for v in values], datatype=DataType.BITS))
            else:
                blocks.append(SimData(start, values=[int(v) for v in values], datatype=DataType.REGISTERS))
        return blocks


def _build_table(unit: Unit, table: Table) -> _TableState:
    points = unit.points(table)
    if not points:
        return _TableState(table, image={}, placeholder=True)
    image: dict[int, int | bool] = {}
    read_only: set[int] = set()
    if table.is_bits:
        # pymodbus serves bit tables in whole 16-bit words; keep every served bit in the image.
        low = min(p.address for p in points) // 16 * 16
        high = (max(p.address for p in points) // 16 + 1) * 16
        image.update(dict.fromkeys(range(low, min(high, 65536)), False))
    elif unit.fill_gaps:
        low = min(p.address for p in points)
        high = max(p.address + p.register_count for p in points)
        image.update(dict.fromkeys(range(low, high), 0))
    for point in points:
        words = _encode(point, point.initial_value())
        addresses = range(point.address, point.address + len(words))
        image.update(zip(addresses, words, strict=True))
        if not point.is_writable(table):
            read_only.update(addresses)
    return _TableState(table, image=image, read_only=read_only)


def _encode(point: BitPoint | RegisterPoint, value: Value) -> list[int] | list[bool]:
    if isinstance(point, RegisterPoint):
        return point.encode(value)
    return [bool(value)]


class _Driver:
    """Advances one dynamic point by one tick."""

    def __init__(self, unit_id: int, table: Table, point: BitPoint | RegisterPoint) -> None:
        self.unit_id = unit_id
        self.table = table
        self.point = point
        self.behaviour = point.behaviour
        start = point.initial_value()
        self.state: float | int | bool = start if not isinstance(start, str) else 0
        seed = self.behaviour.seed if isinstance(self.behaviour, RandomWalk) else None
        self.rng = random.Random(seed)

    def advance(self, tick: int, interval: float) -> Value:
        b = self.behaviour
        if isinstance(b, Ramp):
            nxt = float(self.state) + b.step
            self.state = b.min if nxt > b.max else b.max if nxt < b.min else nxt
        elif isinstance(b, Sine):
            self.state = sine_value(b, tick * interval)
        elif isinstance(b, RandomWalk):
            self.state = min(b.max, max(b.min, float(self.state) + self.rng.uniform(-b.step, b.step)))
        elif isinstance(b, Counter):
            self.state = self._count(b)
        elif isinstance(b, Toggle):
            if tick % b.every == 0:
                self.state = not self.state
            return bool(self.state)
        return self.point.coerce(self.state)

    def _count(self, b: Counter) -> float | int:
        kind = self.point.type
        if kind.is_int:
            value = int(self.state) + int(b.step)
            if b.wrap is not None:
                return value % int(b.wrap)
            low, high = kind.int_range
            return low + (value - low) % (high - low + 1)  # wraps like the PLC's integer would
        result = float(self.state) + b.step
        return result % b.wrap if b.wrap is not None else result


class ModbusSimulator:
    """A Modbus TCP (or RTU-over-TCP) PLC simulator serving the units of a `SimConfig`.

    `async with ModbusSimulator(config, "127.0.0.1", 0) as sim:` listens on a free port (`sim.port`)
    and ticks every `config.tick_interval` seconds unless `autotick=False` (then call `await sim.tick()`).
    `stop()` closes the listener and every connection and pauses ticking; `start()` listens again on the
    same port with the values kept.
    """

    def __init__(
        self,
        config: SimConfig,
        host: str = "127.0.0.1",
        port: int = 5020,
        *,
        framer: Framer = "socket",
        autotick: bool = True,
        tick_interval: float | None = None,
    ) -> None:
        self.config = config
        self.host = host
        self.port = port
        """The bound port once started (the real one when 0 was asked for); restarts reuse it."""
        self.framer = framer
        self.autotick = autotick
        self.tick_interval = tick_interval if tick_interval is not None else config.tick_interval
        self.request_count: CounterDict[tuple[int, int]] = CounterDict()
        """Requests received, by (unit id, function code), counted as the server decodes them."""
        self.ticks = 0
        """Ticks done so far; the initial values are tick 0."""
        self._units = {u.unit_id: u for u in config.units}
        self._tables = {(u.unit_id, t): _build_table(u, t) for u in config.units for t in Table}
        self._drivers = [
            _Driver(u.unit_id, t, p) for u in config.units for t in Table for p in u.points(t) if p.behaviour
        ]
        self._exceptions: dict[int, ExcCodes] = {}
        self._delays: dict[int, float] = {}
        self._release = asyncio.Event()  # set to let answers held back by a delay go at once
        self._server: ModbusTcpServer | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._tick_lock = asyncio.Lock()

    # --- lifecycle ------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._server is not None

    async def start(self) -> None:
        """Listen (again). Raises OSError if the address cannot be bound."""
        if self._server is not None:
            return
        devices = [
            SimDevice(
                unit_id,
                # SimDevice's order of the four separate tables.
                simdata=(
                    self._tables[unit_id, Table.COILS].simdata(),
                    self._tables[unit_id, Table.DISCRETE_INPUTS].simdata(),
                    self._tables[unit_id, Table.HOLDING_REGISTERS].simdata(),
                    self._tables[unit_id, Table.INPUT_REGISTERS].simdata(),
                ),
                action=self._make_action(unit_id),
            )
            for unit_id in self._units
        ]
        if 0 not in self._units:
            devices.append(
                SimDevice(0, simdata=[SimData(0, count=65536, datatype=DataType.REGISTERS)], action=_absent_unit)
            )
        server = ModbusTcpServer(
            devices,
            framer=FramerType.RTU if self.framer == "rtu" else FramerType.SOCKET,
            address=(self.host, self.port),
            trace_pdu=self._trace_pdu,
        )
        try:
            await server.serve_forever(background=True)
        except RuntimeError as err:  # pymodbus logs the OSError and raises this instead
            raise OSError(f"modbus simulator cannot listen on {self.host}:{self.port}") from err
        listener = cast(asyncio.Server, server.transport)
        self.port = int(listener.sockets[0].getsockname()[1])
        self._server = server
        if self.autotick:
            self._ticker = asyncio.create_task(self._tick_forever(), name="modbus-sim-tick")
        log.info(
            "modbus simulator listening on %s:%d (%s framing), units %s",
            self.host,
            self.port,
            self.framer,
            sorted(self._units),
        )

    async def stop(self) -> None:
        """Close the listener and every client connection; keep the values for the next `start()`."""
        self._release_held()
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        server = self._server
        if server is None:
            return
        # Copy the datastore (client writes included) into the images before the server goes.
        for (unit_id, table), state in self._tables.items():
            if state.placeholder:
                continue
            for start, count in state.runs():
                values = await self._read(unit_id, table, start, count)
                state.image.update(zip(range(start, start + count), values, strict=True))
        self._server = None
        await server.shutdown()  # type: ignore[no-untyped-call]  # unannotated in pymodbus 3.16
        log.info("modbus simulator on %s:%d stopped", self.host, self.port)

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    async def serve_forever(self) -> None:
        """Run until cancelled (the CLI's main loop)."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.stop()

    # --- ticking --------------------------------------------------------------------------------------

    async def tick(self, count: int = 1) -> None:
        """Advance every dynamic point by `count` ticks now (what the tick task does each interval)."""
        async with self._tick_lock:
            for _ in range(count):
                self.ticks += 1
                for driver in self._drivers:
                    value = driver.advance(self.ticks, self.tick_interval)
                    await self._write(driver.unit_id, driver.table, driver.point.address, _encode(driver.point, value))

    async def _tick_forever(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.tick_interval
        failing = False
        while True:
            await asyncio.sleep(max(0.0, deadline - loop.time()))
            try:
                await self.tick()
            except Exception:
                if not failing:
                    log.exception("modbus simulator tick failed")
                failing = True
            else:
                if failing:
                    log.info("modbus simulator ticks again")
                failing = False
            # Deadlines, not sleeps, so ticks do not drift; after a stall, resume from now, no burst.
            deadline = max(deadline + self.tick_interval, loop.time())

    # --- values ---------------------------------------------------------------------------------------

    async def get(self, unit_id: int, name: str) -> Value:
        """A point's current value, decoded from what the server holds."""
        table, point = self._point(unit_id, name)
        values = await self._read(unit_id, table, point.address, point.register_count)
        if isinstance(point, RegisterPoint):
            return point.decode([int(v) for v in values])
        return bool(values[0])

    async def set(self, unit_id: int, name: str, value: Value) -> None:
        """Store a value as if the PLC program wrote it (a dynamic point moves on at the next tick)."""
        table, point = self._point(unit_id, name)
        if point.type is PointType.BOOL and not isinstance(value, bool):
            raise TypeError(f"{name!r} is a bool point, got {value!r}")
        await self._write(unit_id, table, point.address, _encode(point, value))

    async def read_registers(self, unit_id: int, table: Table | str, address: int, count: int = 1) -> list[int]:
        """Raw registers of a register table, as the server holds them."""
        table = Table(table)
        if table.is_bits:
            raise SimulatorError(f"{table.value} holds bits; use read_bits")
        return [int(v) for v in await self._read(unit_id, table, address, count)]

    async def read_bits(self, unit_id: int, table: Table | str, address: int, count: int = 1) -> list[bool]:
        table = Table(table)
        if not table.is_bits:
            raise SimulatorError(f"{table.value} holds registers; use read_registers")
        return [bool(v) for v in await self._read(unit_id, table, address, count)]

    # --- faults ---------------------------------------------------------------------------------------

    def set_exception(self, unit_id: int, code: int | None) -> None:
        """Answer every client request to this unit with Modbus exception `code` (None: normal again)."""
        self._unit(unit_id)
        if code is None:
            self._exceptions.pop(unit_id, None)
        else:
            self._exceptions[unit_id] = ExcCodes(code)

    def set_delay(self, unit_id: int, seconds: float | None) -> None:
        """Delay every answer of this unit (longer than a client's timeout: a silent device).

        Changing the delay releases the answers held back so far."""
        self._unit(unit_id)
        self._release_held()
        if seconds:
            self._delays[unit_id] = seconds
        else:
            self._delays.pop(unit_id, None)

    # --- request counting -----------------------------------------------------------------------------

    def requests(self, unit_id: int | None = None, function_code: int | None = None) -> int:
        """Requests received so far, optionally only those of one unit and/or function code."""
        return sum(
            n
            for (unit, fc), n in self.request_count.items()
            if (unit_id is None or unit == unit_id) and (function_code is None or fc == function_code)
        )

    def reset_request_count(self) -> None:
        self.request_count.clear()

    def _trace_pdu(self, sending: bool, pdu: ModbusPDU) -> ModbusPDU:
        if not sending:
            self.request_count[pdu.dev_id, pdu.function_code] += 1
        return pdu

    # --- internals ------------------------------------------------------------------------------------

    def _unit(self, unit_id: int) -> Unit:
        try:
            return self._units[unit_id]
        except KeyError:
            raise SimulatorError(f"the simulator has no unit id {unit_id}") from None

    def _point(self, unit_id: int, name: str) -> tuple[Table, BitPoint | RegisterPoint]:
        try:
            return self._unit(unit_id).find(name)
        except KeyError as err:
            raise SimulatorError(str(err.args[0])) from None

    def _state(self, unit_id: int, table: Table, address: int, count: int) -> _TableState:
        self._unit(unit_id)
        state = self._tables[unit_id, table]
        if count < 1 or any(a not in state.image for a in range(address, address + count)):
            raise SimulatorError(f"unit {unit_id} does not serve {table.value} {address}..{address + count - 1}")
        return state

    async def _read(self, unit_id: int, table: Table, address: int, count: int) -> list[int] | list[bool]:
        state = self._state(unit_id, table, address, count)
        if self._server is None:
            image = [state.image[a] for a in range(address, address + count)]
            return [bool(v) for v in image] if table.is_bits else [int(v) for v in image]
        with _as_simulator():
            return await self._server.async_getValues(unit_id, table.read_function_code, address, count)

    async def _write(self, unit_id: int, table: Table, address: int, values: list[int] | list[bool]) -> None:
        state = self._state(unit_id, table, address, len(values))
        if self._server is None:
            state.image.update(zip(range(address, address + len(values)), values, strict=True))
            return
        # Any function code that maps to the table will do: pymodbus picks the table by function code only.
        with _as_simulator():
            await self._server.async_setValues(unit_id, table.read_function_code, address, values)

    def _release_held(self) -> None:
        self._release.set()
        self._release = asyncio.Event()

    def _make_action(self, unit_id: int) -> SimAction:
        async def action(
            function_code: int,
            _start: int,
            address: int,
            _count: int,
            _registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            if _internal.get():
                return None
            if function_code in WRITE_FUNCTION_CODES and set_values is None:
                return None  # the read-back pymodbus does to build a write's reply: checked already
            delay = self._delays.get(unit_id)
            if delay:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._release.wait(), delay)
            if (code := self._exceptions.get(unit_id)) is not None:
                return code
            state = self._tables[unit_id, _TABLE_BY_FC[function_code]]
            if state.placeholder:
                return ExcCodes.ILLEGAL_ADDRESS
            if set_values is not None and not state.read_only.isdisjoint(range(address, address + len(set_values))):
                return ExcCodes.ILLEGAL_ADDRESS  # what PLCs answer for a write to a read-only address
            return None

        return action


async def _absent_unit(
    _function_code: int,
    _start: int,
    _address: int,
    _count: int,
    _registers: list[int],
    _set_values: list[int] | list[bool] | None,
) -> ExcCodes | None:
    return None if _internal.get() else ExcCodes.GATEWAY_NO_RESPONSE
