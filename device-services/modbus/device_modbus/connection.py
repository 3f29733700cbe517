"""One connection and one lock per physical link (a TCP address:port or a serial port).

All devices behind a link share it and never interleave requests: Modbus serial lines cannot carry two
requests at once, and many TCP gateways mishandle concurrent transactions. A failed link is dropped and
reconnected on the next request, with capped backoff so a dead PLC costs one fast failure per poll rather
than a hang."""

from __future__ import annotations

import asyncio
import logging
import struct
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException, ModbusIOException
from pymodbus.framer import FramerType
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse

from device_modbus.attributes import ModbusConnection, SerialConnection
from edgeplane_common.errors import CommunicationError, ServiceUnavailable

log = logging.getLogger(__name__)

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server device failure",
    5: "acknowledge",
    6: "server device busy",
    8: "memory parity error",
    10: "gateway path unavailable",
    11: "gateway target device failed to respond",
}


class DeviceRefused(CommunicationError):
    """The device answered with a Modbus exception: it is reachable, the request was refused."""

    device_alive = True


@lru_cache(maxsize=128)
def _words(n: int) -> struct.Struct:
    return struct.Struct(f">{n}H")


class _FastRegisters:
    """pymodbus 3.16 decodes a register response one `struct.unpack` per register and renders every
    register into a debug string nobody reads (DecodePDU.decode builds it eagerly): for 125 registers that is
    most of the client's time per request. Same result, one unpack, and a debug string without the
    registers."""

    function_code: int
    registers: Sequence[int]
    dev_id: int
    transaction_id: int

    def decode(self, data: bytes) -> None:
        if (data_len := int(data[0])) >= len(data):
            raise ModbusIOException(
                f"byte_count {data_len} > length of packet {len(data)}", function_code=self.function_code
            )
        self.registers = list(_words(data_len // 2).unpack_from(data, 1))

    def __str__(self) -> str:
        return (
            f"{type(self).__name__}(dev_id={self.dev_id}, transaction_id={self.transaction_id}, "
            f"registers=<{len(self.registers)}>)"
        )


class _HoldingRegistersResponse(_FastRegisters, ReadHoldingRegistersResponse):
    pass


class _InputRegistersResponse(_FastRegisters, ReadInputRegistersResponse):
    pass


def describe(conn: ModbusConnection) -> str:
    if isinstance(conn, SerialConnection):
        return conn.address
    return f"{conn.protocol.value}://{conn.address}:{conn.port}"


class Link:
    BACKOFF_MIN, BACKOFF_MAX = 0.5, 10.0

    def __init__(self, config: ModbusConnection) -> None:
        self.config = config
        self.name = describe(config)
        self.lock = asyncio.Lock()
        self.client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self.backoff = 0.0
        self.retry_at = 0.0
        self.down_logged = False
        self.requests = 0
        self._idle_task: asyncio.Task[None] | None = None
        self._last_used = 0.0

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        c = self.config
        # reconnect_delay=0: we own reconnection (pymodbus reconnects the transport but never retries the call).
        if isinstance(c, SerialConnection):
            return AsyncModbusSerialClient(
                c.address,
                framer=FramerType(c.framer),
                baudrate=c.baud_rate,
                bytesize=c.data_bits,
                stopbits=int(c.stop_bits),
                parity=c.parity,
                timeout=c.timeout,
                retries=0,
                reconnect_delay=0,
            )
        return AsyncModbusTcpClient(
            c.address, port=c.port, framer=FramerType(c.framer), timeout=c.timeout, retries=0, reconnect_delay=0
        )

    async def _connected(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self.client is not None and self.client.connected:
            return self.client
        loop = asyncio.get_running_loop()
        if loop.time() < self.retry_at:
            raise ServiceUnavailable(
                f"Modbus link {self.name} is down; reconnecting in {self.retry_at - loop.time():.1f}s"
            )
        client = self._new_client()
        client.register(_HoldingRegistersResponse)
        client.register(_InputRegistersResponse)
        try:
            ok = await client.connect()
        except (OSError, ModbusException) as err:
            ok = False
            reason = str(err)
        else:
            reason = "connection refused or timed out"
        if not ok:
            client.close()
            self.backoff = min(max(self.backoff * 2, self.BACKOFF_MIN), self.BACKOFF_MAX)
            self.retry_at = loop.time() + self.backoff
            if not self.down_logged:
                log.warning("Modbus link %s unreachable: %s", self.name, reason)
                self.down_logged = True
            raise ServiceUnavailable(f"cannot connect to Modbus link {self.name}: {reason}")
        if self.down_logged:
            log.info("Modbus link %s reconnected", self.name)
        self.down_logged = False
        self.backoff = 0.0
        self.client = client
        return client

    async def call(self, method: str, address: int, *args: Any, device_id: int, **kw: Any) -> Any:
        """Run one Modbus request under the link lock; errors become clear EdgeErrors."""
        async with self.lock:
            return await self.call_locked(method, address, *args, device_id=device_id, **kw)

    async def call_locked(self, method: str, address: int, *args: Any, device_id: int, **kw: Any) -> Any:
        """As `call`, for a caller already holding `self.lock` (a read-modify-write of one register)."""
        client = await self._connected()
        self.requests += 1
        try:
            response = await getattr(client, method)(address, *args, device_id=device_id, **kw)
        except (TimeoutError, ModbusException, OSError) as err:
            self._drop()
            raise CommunicationError(
                f"Modbus {method} at {address} (unit {device_id}) on {self.name} failed: {err}"
            ) from err
        finally:
            self._touch()
        if response.isError():
            code = getattr(response, "exception_code", 0)
            name = EXCEPTION_NAMES.get(code, "unknown exception")
            raise DeviceRefused(
                f"unit {device_id} on {self.name} answered Modbus exception {code} ({name}) "
                f"to {method} at address {address}"
            )
        return response

    async def read(self, table: str, address: int, count: int, device_id: int) -> Sequence[int] | Sequence[bool]:
        method = READ_METHOD[table]
        response = await self.call(method, address, device_id=device_id, count=count)
        if table in ("COILS", "DISCRETE_INPUTS"):
            return list(response.bits[:count])
        return list(response.registers)

    def _drop(self) -> None:
        if self.client is not None:
            self.client.close()
            self.client = None

    def _touch(self) -> None:
        loop = asyncio.get_running_loop()
        self._last_used = loop.time()
        if self.config.idle_timeout > 0 and (self._idle_task is None or self._idle_task.done()):
            self._idle_task = asyncio.create_task(self._idle_watch())

    async def _idle_watch(self) -> None:
        loop = asyncio.get_running_loop()
        while self.client is not None:
            wait = self._last_used + self.config.idle_timeout - loop.time()
            if wait <= 0:
                async with self.lock:
                    if loop.time() - self._last_used >= self.config.idle_timeout:
                        self._drop()
                return
            await asyncio.sleep(wait)

    async def close(self) -> None:
        if self._idle_task is not None:
            self._idle_task.cancel()
        async with self.lock:
            self._drop()


READ_METHOD = {
    "COILS": "read_coils",
    "DISCRETE_INPUTS": "read_discrete_inputs",
    "INPUT_REGISTERS": "read_input_registers",
    "HOLDING_REGISTERS": "read_holding_registers",
}


class LinkPool:
    """Links by physical identity, so two UnitIDs behind one gateway share one connection and lock."""

    def __init__(self) -> None:
        self.links: dict[tuple[str, ...], Link] = {}

    def get(self, config: ModbusConnection) -> Link:
        link = self.links.get(config.link)
        if link is None:
            link = self.links[config.link] = Link(config)
        return link

    async def close(self) -> None:
        for link in self.links.values():
            await link.close()
        self.links.clear()
