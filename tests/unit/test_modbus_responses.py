"""device-modbus decodes register responses faster than pymodbus; the result must be pymodbus's own."""

from __future__ import annotations

import struct

import pytest
from pymodbus.exceptions import ModbusIOException
from pymodbus.pdu.register_message import ReadHoldingRegistersResponse, ReadInputRegistersResponse

from device_modbus.connection import _HoldingRegistersResponse, _InputRegistersResponse


@pytest.mark.parametrize(
    ("fast", "reference"),
    [(_HoldingRegistersResponse, ReadHoldingRegistersResponse), (_InputRegistersResponse, ReadInputRegistersResponse)],
)
@pytest.mark.parametrize("count", [0, 1, 2, 62, 124, 125])
def test_register_responses_decode_as_pymodbus_does(fast: type, reference: type, count: int) -> None:
    words = [(i * 7919) % 65536 for i in range(count)]
    data = struct.pack(f">B{count}H", 2 * count, *words)
    ours, theirs = fast(), reference()
    ours.decode(data)
    theirs.decode(data)
    assert ours.registers == theirs.registers == words
    assert ours.function_code == theirs.function_code
    assert f"registers=<{count}>" in str(ours)


@pytest.mark.parametrize("fast", [_HoldingRegistersResponse, _InputRegistersResponse])
def test_odd_and_short_byte_counts_behave_as_pymodbus(fast: type) -> None:
    data = bytes([5, 0, 1, 0, 2, 9, 9])  # an odd byte count: the last byte is ignored, as pymodbus does
    ours, theirs = fast(), ReadHoldingRegistersResponse()
    ours.decode(data)
    theirs.decode(data)
    assert ours.registers == theirs.registers == [1, 2]
    with pytest.raises(ModbusIOException, match="byte_count"):
        fast().decode(bytes([4, 0, 1]))
