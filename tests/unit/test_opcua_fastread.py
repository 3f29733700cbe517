"""device-opcua's Read response decoder gives what asyncua's own decoder gives, for every kind of DataValue."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from asyncua import ua
from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary

from device_opcua.convert import datetime_ns
from device_opcua.fastread import decode_read_response, filetime_ns

VT = ua.VariantType
T = dt.datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=dt.UTC)


def variants() -> list[ua.Variant]:
    return [
        ua.Variant(True, VT.Boolean),
        ua.Variant(-5, VT.SByte),
        ua.Variant(200, VT.Byte),
        ua.Variant(-300, VT.Int16),
        ua.Variant(60000, VT.UInt16),
        ua.Variant(-(2**31), VT.Int32),
        ua.Variant(2**32 - 1, VT.UInt32),
        ua.Variant(-(2**63), VT.Int64),
        ua.Variant(2**64 - 1, VT.UInt64),
        ua.Variant(1.5, VT.Float),
        ua.Variant(3.14159, VT.Double),
        ua.Variant(float("nan"), VT.Double),
        ua.Variant("grüße", VT.String),
        ua.Variant(None, VT.String),
        ua.Variant(T, VT.DateTime),
        ua.Variant(b"\x00\x01", VT.ByteString),
        ua.Variant(uuid.UUID(int=7), VT.Guid),
        ua.Variant([1.0, 2.0], VT.Double),
        ua.Variant([[1, 2], [3, 4]], VT.Int32),
        ua.Variant(ua.LocalizedText("hi"), VT.LocalizedText),
        ua.Variant(ua.NodeId("x", 2), VT.NodeId),
    ]


def data_values() -> list[ua.DataValue]:
    out = [ua.DataValue(v, SourceTimestamp=T, ServerTimestamp=T) for v in variants()]
    out += [
        ua.DataValue(ua.Variant(1.0, VT.Double)),  # no timestamps
        ua.DataValue(StatusCode=ua.StatusCode(ua.StatusCodes.BadNodeIdUnknown)),  # no value
        ua.DataValue(ua.Variant(2, VT.Int32), StatusCode=ua.StatusCode(ua.StatusCodes.UncertainLastUsableValue)),
        ua.DataValue(ua.Variant(3.0, VT.Double), SourceTimestamp=T, SourcePicoseconds=5, ServerPicoseconds=7),
        ua.DataValue(ua.Variant(4.0, VT.Double), SourceTimestamp=dt.datetime(1601, 1, 1, tzinfo=dt.UTC)),
        ua.DataValue(ua.Variant(5.0, VT.Double), SourceTimestamp=dt.datetime(9999, 12, 31, 23, 59, tzinfo=dt.UTC)),
    ]
    return out


def encoded(results: list[ua.DataValue], status: int = 0) -> bytes:
    response = ua.ReadResponse()
    response.ResponseHeader.ServiceResult = ua.StatusCode(status)
    response.Results = results
    return struct_to_binary(response)


def same(a: object, b: object) -> bool:
    return a == b or (a != a and b != b)  # NaN


def test_decodes_as_asyncua_does() -> None:
    data = encoded(data_values())
    expected = struct_from_binary(ua.ReadResponse, ua.utils.Buffer(data)).Results
    got = decode_read_response(data)
    assert len(got) == len(expected)
    for (value, status, ts), dv in zip(got, expected, strict=True):
        want = dv.Value.Value if dv.Value is not None else None
        assert same(value, want), (value, want)
        assert type(value) is type(want)
        assert status == dv.StatusCode.value
        assert ts == (datetime_ns(dv.SourceTimestamp) if dv.SourceTimestamp is not None else None)


def test_bad_service_result_raises() -> None:
    with pytest.raises(ua.UaStatusCodeError):
        decode_read_response(encoded([], ua.StatusCodes.BadTooManyOperations))


@pytest.mark.parametrize("ticks", [0, 1, 10, 133_000_000_000_000_009, -1, 2**63 - 1])
def test_filetime_ns_matches_asyncua_datetimes(ticks: int) -> None:
    assert filetime_ns(ticks) == datetime_ns(ua.uatypes.win_epoch_to_datetime(ticks))
