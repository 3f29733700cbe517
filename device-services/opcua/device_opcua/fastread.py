"""A lean decoder for Read responses: each result as (value, status code, source timestamp in Unix ns).

asyncua decodes every DataValue of a response into dataclasses (DataValue, Variant with its type checks,
StatusCode, two datetimes): for a 1,000-node device polled continuously that costs more than everything else
edgeplane does with the values. Here the common case (a scalar number or Boolean, status, timestamps) is read
straight from the bytes with `struct`; anything else (strings, arrays, structures, picoseconds) is handed to
asyncua's own decoder at that position, so the values are the ones asyncua gives, by construction
(tests/unit/test_opcua_fastread.py checks both against responses asyncua encodes).
"""

from __future__ import annotations

import struct
from typing import Any

from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import nodeid_from_binary, struct_from_binary, variant_from_binary
from asyncua.ua.uatypes import MAX_OPC_FILETIME, win_epoch_to_datetime

from device_opcua.convert import datetime_ns

ReadResult = tuple[Any, int, int | None]
"""A node's value (as asyncua gives it), its status code (0 = Good) and its source timestamp (Unix ns)."""

# Variant encoding byte (no array bits) -> how the scalar is packed.
_SCALARS: dict[int, struct.Struct] = {
    ua.VariantType.Boolean.value: struct.Struct("<?"),
    ua.VariantType.SByte.value: struct.Struct("<b"),
    ua.VariantType.Byte.value: struct.Struct("<B"),
    ua.VariantType.Int16.value: struct.Struct("<h"),
    ua.VariantType.UInt16.value: struct.Struct("<H"),
    ua.VariantType.Int32.value: struct.Struct("<i"),
    ua.VariantType.UInt32.value: struct.Struct("<I"),
    ua.VariantType.Int64.value: struct.Struct("<q"),
    ua.VariantType.UInt64.value: struct.Struct("<Q"),
    ua.VariantType.Float.value: struct.Struct("<f"),
    ua.VariantType.Double.value: struct.Struct("<d"),
}
_INT32 = struct.Struct("<i")
_UINT32 = struct.Struct("<I")
_INT64 = struct.Struct("<q")
_VALUE, _STATUS, _SOURCE_TS, _SERVER_TS, _PICOSECONDS = 0x01, 0x02, 0x04, 0x08, 0x30
_EPOCH_DIFF_US = 11_644_473_600_000_000  # 1601-01-01 (OPC UA DateTime) to 1970-01-01, in microseconds


def filetime_ns(ticks: int) -> int:
    """Unix nanoseconds of an OPC UA DateTime (100 ns ticks since 1601), exactly as datetime_ns of asyncua's
    datetime for it (microsecond precision, clamped the same way)."""
    if 0 <= ticks < MAX_OPC_FILETIME:
        return (ticks // 10 - _EPOCH_DIFF_US) * 1000
    return datetime_ns(win_epoch_to_datetime(ticks))


def data_value_result(dv: ua.DataValue) -> ReadResult:
    """The result of a DataValue asyncua decoded (what `decode_read_response` gives for it)."""
    status = dv.StatusCode.value if dv.StatusCode is not None else 0
    ts = datetime_ns(dv.SourceTimestamp) if dv.SourceTimestamp is not None else None
    return (dv.Value.Value if dv.Value is not None else None, status, ts)


def decode_read_response(data: bytes) -> list[ReadResult]:
    """The results of a binary ReadResponse (starting at its type id); raises the service result if bad."""
    buf = Buffer(data)
    nodeid_from_binary(buf)  # the response's type id, checked by asyncua before it hands the bytes back
    header = struct_from_binary(ua.ResponseHeader, buf)
    header.ServiceResult.check()
    pos = buf.cur_pos
    (count,) = _INT32.unpack_from(data, pos)
    pos += 4
    results: list[ReadResult] = []
    append = results.append
    scalars = _SCALARS
    for _ in range(max(count, 0)):
        mask = data[pos]
        if mask & _PICOSECONDS:  # rare: let asyncua decode the whole DataValue
            sub = Buffer(data, pos)
            append(data_value_result(struct_from_binary(ua.DataValue, sub)))
            pos = sub.cur_pos
            continue
        pos += 1
        value = None
        if mask & _VALUE:
            fmt = scalars.get(data[pos])
            if fmt is not None:
                (value,) = fmt.unpack_from(data, pos + 1)
                pos += 1 + fmt.size
            else:
                sub = Buffer(data, pos)
                value = variant_from_binary(sub).Value
                pos = sub.cur_pos
        status = 0
        if mask & _STATUS:
            (status,) = _UINT32.unpack_from(data, pos)
            pos += 4
        ts = None
        if mask & _SOURCE_TS:
            (ticks,) = _INT64.unpack_from(data, pos)
            pos += 8
            ts = filetime_ns(ticks)
        if mask & _SERVER_TS:
            pos += 8
        append((value, status, ts))
    return results
