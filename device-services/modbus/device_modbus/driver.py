"""The Modbus ProtocolDriver: coalesced reads, one connection and lock per physical link, writes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from device_modbus.attributes import ModbusConnection, parse_protocols
from device_modbus.codec import RegisterBlock, ResourceCodec, compile_codec
from device_modbus.connection import Link, LinkPool
from device_modbus.planner import BIT_TABLES, Block, Span, plan
from edgeplane_common.models import Device
from edgeplane_common.models.event import now_ns
from edgeplane_sdk.driver import CommandRequest, CommandValue, ProtocolDriver

log = logging.getLogger(__name__)


class _Plan:
    __slots__ = ("blocks", "codecs", "register_spans", "requests")

    def __init__(self, requests: list[CommandRequest], codecs: list[ResourceCodec], blocks: list[Block]) -> None:
        self.requests = requests  # kept so the cache key (its id) cannot be reused while cached
        self.codecs = codecs
        self.blocks = blocks
        # Per register block, what each of its spans needs, looked up once rather than per poll:
        # (index in the request, the codec's block decoder, offset in the block).
        self.register_spans: list[list[tuple[int, Callable[[RegisterBlock, int], Any], int]]] = [
            []
            if block.table in BIT_TABLES
            else [(span.index, codecs[span.index].decode_block, span.address - block.start) for span in block.spans]
            for block in blocks
        ]


class ModbusDriver(ProtocolDriver):
    def __init__(self, *, max_gap: int = 16) -> None:
        self.max_gap = max_gap
        self.pool = LinkPool()
        self._connections: dict[str, ModbusConnection] = {}
        self._plans: dict[int, _Plan] = {}

    # -- lifecycle -------------------------------------------------------------------------------
    async def validate_device(self, device: Device) -> None:
        parse_protocols(device.protocols, device=device.name)

    async def add_device(self, device: Device) -> None:
        self._connections[device.name] = parse_protocols(device.protocols, device=device.name)

    async def update_device(self, device: Device) -> None:
        await self.remove_device(device)
        await self.add_device(device)

    async def remove_device(self, device: Device) -> None:
        old = self._connections.pop(device.name, None)
        if old is not None and not any(c.link == old.link for c in self._connections.values()):
            link = self.pool.links.pop(old.link, None)
            if link is not None:
                await link.close()

    async def stop(self, force: bool = False) -> None:
        await self.pool.close()

    # -- commands --------------------------------------------------------------------------------
    def _link(self, device: Device) -> tuple[ModbusConnection, Link]:
        conn = self._connections.get(device.name)
        if conn is None:
            conn = self._connections[device.name] = parse_protocols(device.protocols, device=device.name)
        return conn, self.pool.get(conn)

    def _plan(self, requests: list[CommandRequest]) -> _Plan:
        cached = self._plans.get(id(requests))
        if cached is not None and cached.requests is requests:
            return cached
        codecs = [compile_codec(r.attributes, r.value_type, resource=r.resource_name) for r in requests]
        spans = [Span(i, c.table.value, c.address, c.count) for i, c in enumerate(codecs)]
        built = _Plan(requests, codecs, plan(spans, max_gap=self.max_gap))
        if len(self._plans) > 4096:
            self._plans.clear()
        self._plans[id(requests)] = built
        return built

    async def handle_read_commands(
        self, device: Device, protocols: dict[str, dict[str, Any]], requests: list[CommandRequest]
    ) -> list[CommandValue]:
        conn, link = self._link(device)
        p = self._plan(requests)
        raw: list[Any] = [None] * len(requests)
        for block, register_spans in zip(p.blocks, p.register_spans, strict=True):
            data = await link.read(block.table, block.start, block.count, conn.unit_id)
            if block.table in BIT_TABLES:
                for span in block.spans:
                    off = span.address - block.start
                    raw[span.index] = p.codecs[span.index].decode(data[off : off + span.count])
            else:
                words = RegisterBlock(data)  # type: ignore[arg-type]
                for index, decode, offset in register_spans:
                    raw[index] = decode(words, offset)
        origin = now_ns()
        return [
            CommandValue(r.resource_name, r.value_type, v, origin=origin) for r, v in zip(requests, raw, strict=True)
        ]

    async def handle_write_commands(
        self,
        device: Device,
        protocols: dict[str, dict[str, Any]],
        requests: list[CommandRequest],
        values: list[CommandValue],
    ) -> None:
        conn, link = self._link(device)
        unit = conn.unit_id
        for req, cv in zip(requests, values, strict=True):
            codec = compile_codec(req.attributes, req.value_type, resource=req.resource_name)
            if codec.needs_current:
                # One bit of a register: read-modify-write with nobody else on the link in between.
                async with link.lock:
                    current = await link.call_locked(
                        _READ[codec.table.value], codec.address, device_id=unit, count=codec.count
                    )
                    words = codec.encode(cv.value, current=current.registers)
                    await _write(link, codec, words, unit, locked=True)
                continue
            await _write(link, codec, codec.encode(cv.value), unit, locked=False)


_READ = {"HOLDING_REGISTERS": "read_holding_registers", "INPUT_REGISTERS": "read_input_registers"}


async def _write(link: Link, codec: ResourceCodec, data: list[int] | list[bool], unit: int, *, locked: bool) -> None:
    if codec.table.is_bits:
        method, payload = ("write_coil", data[0]) if len(data) == 1 else ("write_coils", data)
    else:
        method, payload = ("write_register", data[0]) if len(data) == 1 else ("write_registers", data)
    call = link.call_locked if locked else link.call
    await call(method, codec.address, payload, device_id=unit)
