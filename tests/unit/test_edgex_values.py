"""Raw values ⇄ EdgeX reading text: Go's float formatting, array layout, and write-value parsing."""

from __future__ import annotations

import base64
import math
import re
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeplane_common.edgex.values import (
    INT_RANGES,
    INTEGER_TYPES,
    NUMERIC_TYPES,
    UNSIGNED_TYPES,
    format_float,
    format_value,
    parse_bool,
    parse_flag,
    parse_value,
    to_float32,
)
from edgeplane_common.errors import ContractInvalid, ServerError
from edgeplane_common.models import ValueType as V

F32 = struct.Struct("<f")
GO_E = re.compile(r"-?[0-9](\.[0-9]*[1-9])?e[+-][0-9]{2,3}")


def f32(x: float) -> float:
    return float(F32.unpack(F32.pack(x))[0])


# Outputs of Go's strconv.FormatFloat(v, 'e', -1, 64).
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (21.5, "2.15e+01"),
        (0.1, "1e-01"),
        (1.0, "1e+00"),
        (100.0, "1e+02"),
        (0.0, "0e+00"),
        (-0.0, "-0e+00"),
        (-1.5, "-1.5e+00"),
        (123456789.0, "1.23456789e+08"),
        (0.0001, "1e-04"),
        (1e21, "1e+21"),
        (1e100, "1e+100"),
        (5e-324, "5e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (1 / 3, "3.333333333333333e-01"),
        (math.nan, "NaN"),
        (math.inf, "+Inf"),
        (-math.inf, "-Inf"),
    ],
)
def test_float64_formats_like_go(value: float, text: str) -> None:
    assert format_float(value, 64) == text
    assert format_value(value, V.FLOAT64) == text


# Outputs of Go's strconv.FormatFloat(float64(float32(v)), 'e', -1, 32).
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (21.5, "2.15e+01"),
        (0.1, "1e-01"),  # float32(0.1) is 0.100000001490116..., shortest float32 digits are "1"
        (21.3, "2.13e+01"),
        (1 / 3, "3.3333334e-01"),
        (16777217.0, "1.6777216e+07"),  # not representable: rounds to 2**24
        (3.4028234663852886e38, "3.4028235e+38"),  # MaxFloat32
        (1.1754943508222875e-38, "1.1754944e-38"),  # smallest normal
        (1.401298464324817e-45, "1e-45"),  # smallest subnormal
        (2.0**87, "1.5474251e+26"),  # powers of two: the shorter digits lie on the wide side of the interval
        (2.0**-96, "1.2621775e-29"),
        (3894257.75, "3.8942578e+06"),  # exact tie at 8 digits rounds half to even
        (0.0, "0e+00"),
        (-0.0, "-0e+00"),
        (math.nan, "NaN"),
        (-math.inf, "-Inf"),
    ],
)
def test_float32_formats_like_go(value: float, text: str) -> None:
    assert format_float(value, 32) == text
    assert format_value(value, V.FLOAT32) == text


@settings(deadline=None)  # timing varies on a shared machine; tests never assert it
@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float64_text_is_shortest_round_trip(x: float) -> None:
    text = format_float(x, 64)
    assert GO_E.fullmatch(text)
    assert float(text) == x
    assert math.copysign(1, float(text)) == math.copysign(1, x)
    digits = text.split("e")[0].lstrip("-").replace(".", "")
    assert len(digits) == len(repr(abs(x)).split("e")[0].replace(".", "").strip("0") or "0")


@settings(deadline=None)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False))
def test_float32_text_is_shortest_round_trip(x: float) -> None:
    text = format_float(x, 32)
    assert GO_E.fullmatch(text)
    assert f32(float(text)) == x
    digits = len(text.split("e")[0].lstrip("-").replace(".", ""))
    if digits > 1:  # one digit fewer, correctly rounded, must not read back as the same float32
        assert f32(float(f"{x:.{digits - 2}e}")) != x


@pytest.mark.parametrize(
    ("value", "vt", "text"),
    [
        (True, V.BOOL, "true"),
        (False, V.BOOL, "false"),
        (-128, V.INT8, "-128"),
        (-32768, V.INT16, "-32768"),
        (2**31 - 1, V.INT32, "2147483647"),
        (-(2**63), V.INT64, "-9223372036854775808"),
        (255, V.UINT8, "255"),
        (65535, V.UINT16, "65535"),
        (2**32 - 1, V.UINT32, "4294967295"),
        (2**64 - 1, V.UINT64, "18446744073709551615"),
        ("héllo, world", V.STRING, "héllo, world"),
        ([True, False], V.BOOL_ARRAY, "[true, false]"),
        ([1, -2, 3], V.INT16_ARRAY, "[1, -2, 3]"),
        ([0, 255], V.UINT8_ARRAY, "[0, 255]"),
        ([2**64 - 1], V.UINT64_ARRAY, "[18446744073709551615]"),
        ([], V.INT32_ARRAY, "[]"),
        ([1.0, 2.5, 0.1], V.FLOAT32_ARRAY, "[1e+00, 2.5e+00, 1e-01]"),
        ([0.1, -3.0], V.FLOAT64_ARRAY, "[1e-01, -3e+00]"),
        (["a", "b c", '<"&>'], V.STRING_ARRAY, '["a","b c","\\u003c\\"\\u0026\\u003e"]'),
        (b"\x00\xff", V.BINARY, "AP8="),
        ({"a": [1, 2]}, V.OBJECT, '{"a":[1,2]}'),
    ],
)
def test_format_value_every_type(value: object, vt: V, text: str) -> None:
    assert format_value(value, vt) == text


@pytest.mark.parametrize(
    ("value", "vt", "fragment"),
    [
        (70000, V.INT16, "out of range -32768..32767"),
        (-1, V.UINT32, "out of range 0..4294967295"),
        ("5", V.INT32, "expected an integer"),
        (True, V.INT16, "expected an integer"),
        (1.5, V.UINT8, "expected an integer"),
        ("x", V.FLOAT64, "expected a number"),
        (1e39, V.FLOAT32, "beyond float32 range"),
        (2, V.BOOL, "expected a bool"),
        (5, V.STRING, "expected a str"),
        (5, V.INT16_ARRAY, "expected a list"),
        ([1, 70000], V.INT16_ARRAY, "out of range"),
    ],
)
def test_format_value_rejects_values_of_the_wrong_kind(value: object, vt: V, fragment: str) -> None:
    with pytest.raises(ServerError, match=re.escape(fragment)) as info:
        format_value(value, vt)
    assert vt.value in str(info.value)
    assert info.value.status_code == 500


@pytest.mark.parametrize(
    ("given_value", "vt", "expected"),
    [
        ("true", V.BOOL, True),
        ("T", V.BOOL, True),
        ("1", V.BOOL, True),
        ("False", V.BOOL, False),
        (True, V.BOOL, True),
        (0, V.BOOL, False),
        ("123", V.INT16, 123),
        (" -5 ", V.INT8, -5),
        ("+7", V.UINT8, 7),
        (123, V.INT32, 123),
        (123.0, V.INT64, 123),  # a JSON number Go prints as "123"
        ("18446744073709551615", V.UINT64, 2**64 - 1),
        ("1.5e+00", V.FLOAT64, 1.5),
        ("2.15e+01", V.FLOAT32, 21.5),
        ("0.1", V.FLOAT32, f32(0.1)),
        (0.1, V.FLOAT32, f32(0.1)),
        (3, V.FLOAT64, 3.0),
        ("0x1p-2", V.FLOAT64, 0.25),
        ("-Inf", V.FLOAT64, -math.inf),
        (base64.b64encode(struct.pack(">f", 12.5)).decode(), V.FLOAT32, 12.5),  # EdgeX's legacy float encoding
        (base64.b64encode(struct.pack(">d", -2.25)).decode(), V.FLOAT64, -2.25),
        ("any text", V.STRING, "any text"),
        ("", V.STRING, ""),
        (12, V.STRING, "12"),
        (False, V.STRING, "false"),
        ("[1,2]", V.INT16_ARRAY, [1, 2]),
        ("[1, -2, 3]", V.INT32_ARRAY, [1, -2, 3]),
        ("1,2,3", V.UINT16_ARRAY, [1, 2, 3]),  # device-sdk-go splits unbracketed uint arrays on commas
        ("[]", V.UINT32_ARRAY, []),
        ([1, 2], V.UINT64_ARRAY, [1, 2]),
        ("[true, 0, F]", V.BOOL_ARRAY, [True, False, False]),
        ("[1.5, 2e3]", V.FLOAT64_ARRAY, [1.5, 2000.0]),
        ([0.1], V.FLOAT32_ARRAY, [f32(0.1)]),
        ('["a", "b,c"]', V.STRING_ARRAY, ["a", "b,c"]),
        ("AP8=", V.BINARY, b"\x00\xff"),
        ({"k": 1}, V.OBJECT, {"k": 1}),
    ],
)
def test_parse_value_accepts_edgex_text_and_json(given_value: object, vt: V, expected: object) -> None:
    result = parse_value(given_value, vt)
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("given_value", "vt", "fragment"),
    [
        ("70000", V.INT16, "out of range -32768..32767"),
        ("-1", V.UINT8, "out of range 0..255"),
        ("1.5", V.INT32, "expected a base-10 integer"),
        ("0x10", V.INT32, "expected a base-10 integer"),
        ("1_000", V.INT64, "expected a base-10 integer"),
        (1.5, V.INT16, "expected an integer"),
        (True, V.UINT16, "not a bool"),
        ("yes", V.BOOL, "expected true/false"),
        (2, V.BOOL, "expected true/false"),
        ("abc", V.FLOAT64, "expected a number"),
        ("1_000.5", V.FLOAT64, "expected a number"),
        ("1e39", V.FLOAT32, "out of Float32 range"),
        ("1e400", V.FLOAT64, "out of Float64 range"),
        (False, V.FLOAT32, "not a bool"),
        ("[1, x, 3]", V.INT16_ARRAY, "element 1"),
        ("[1, 70000]", V.INT16_ARRAY, "element 1"),
        ("[1, 2", V.UINT8_ARRAY, "unterminated"),
        ('["a", 1]', V.STRING_ARRAY, "array of strings"),
        ("[a]", V.STRING_ARRAY, "JSON array"),
        ("%%%", V.BINARY, "base64"),
        (7, V.INT16_ARRAY, "expected an array"),
    ],
)
def test_parse_value_rejects_bad_input_naming_type_and_text(given_value: object, vt: V, fragment: str) -> None:
    with pytest.raises(ContractInvalid, match=re.escape(fragment)) as info:
        parse_value(given_value, vt)
    message = str(info.value)
    assert vt.value in message
    shown = given_value if isinstance(given_value, str) else str(given_value).lower()
    assert str(shown) in message
    assert info.value.status_code == 400


@pytest.mark.parametrize("vt", [V.INT16, V.FLOAT32, V.BOOL, V.INT32_ARRAY])
def test_empty_or_missing_value_is_rejected(vt: V) -> None:
    with pytest.raises(ContractInvalid, match=f"empty string is invalid for {vt.value}"):
        parse_value("  ", vt)
    with pytest.raises(ContractInvalid, match=f"missing {vt.value} value"):
        parse_value(None, vt)


@pytest.mark.parametrize("vt", list(INT_RANGES))
@settings(deadline=None)
@given(data=st.data())
def test_integers_round_trip_through_text_and_stop_at_the_type_range(vt: V, data: st.DataObject) -> None:
    lo, hi = INT_RANGES[vt]
    n = data.draw(st.integers(lo, hi))
    assert parse_value(format_value(n, vt), vt) == n
    outside = data.draw(st.one_of(st.integers(max_value=lo - 1), st.integers(min_value=hi + 1)))
    with pytest.raises(ContractInvalid, match="out of range"):
        parse_value(str(outside), vt)


@settings(deadline=None)
@given(st.floats(width=32, allow_nan=False))
def test_float32_round_trips_through_reading_text(x: float) -> None:
    assert parse_value(format_value(x, V.FLOAT32), V.FLOAT32) == x


@settings(deadline=None)
@given(st.floats(allow_nan=False))
def test_float64_round_trips_through_reading_text(x: float) -> None:
    assert parse_value(format_value(x, V.FLOAT64), V.FLOAT64) == x


@settings(deadline=None)
@given(st.lists(st.floats(width=32, allow_nan=False, allow_infinity=False), max_size=8))
def test_float32_arrays_round_trip(values: list[float]) -> None:
    assert parse_value(format_value(values, V.FLOAT32_ARRAY), V.FLOAT32_ARRAY) == values


@settings(deadline=None)
@given(st.lists(st.booleans(), max_size=8), st.lists(st.integers(-(2**63), 2**63 - 1), max_size=8))
def test_bool_and_int_arrays_round_trip(bools: list[bool], ints: list[int]) -> None:
    assert parse_value(format_value(bools, V.BOOL_ARRAY), V.BOOL_ARRAY) == bools
    assert parse_value(format_value(ints, V.INT64_ARRAY), V.INT64_ARRAY) == ints


@settings(deadline=None)
@given(st.lists(st.text(), max_size=5))
def test_string_arrays_round_trip(values: list[str]) -> None:
    assert parse_value(format_value(values, V.STRING_ARRAY), V.STRING_ARRAY) == values


def test_to_float32_rounds_and_refuses_out_of_range() -> None:
    assert to_float32(0.1) == 0.10000000149011612
    assert to_float32(math.inf) == math.inf
    with pytest.raises(OverflowError):
        to_float32(1e39)


# ------------------------------------------------------------------------------------------ the one bool parser

GO_TRUE = ["1", "t", "T", "TRUE", "true", "True"]
GO_FALSE = ["0", "f", "F", "FALSE", "false", "False"]


def test_parse_bool_is_go_parse_bool_exactly() -> None:
    assert [parse_bool(t) for t in GO_TRUE] == [True] * 6
    assert [parse_bool(t) for t in GO_FALSE] == [False] * 6
    assert (parse_bool(True), parse_bool(False)) == (True, False)
    # Go refuses mixed case, blanks and words: so do reading values (core-data) and Bool writes.
    for text in ("tRuE", " true", "true ", "yes", "no", "on", "2", "", None, 1, 0.0):
        assert parse_bool(text) is None, text
    assert parse_value(" true ", V.BOOL) is True  # a write value is trimmed first, as before
    with pytest.raises(ContractInvalid, match="expected true/false"):
        parse_value("yes", V.BOOL)


def test_parse_flag_takes_the_words_true_and_false_in_any_case() -> None:
    # What the query-switch parsers of core-data and core-command accepted: true/false in any case, trimmed.
    for text, want in (("true", True), ("TRUE", True), (" True ", True), ("false", False), ("FaLsE", False)):
        assert parse_flag(text) is want, text
    # Go's other spellings are not switch words (EdgeX refuses numeric=1), nor are yes/no.
    for text in (None, "", " ", "1", "0", "t", "f", "yes", "no", "on", "off", "maybe", "truee"):
        assert parse_flag(text) is None, text


def test_the_type_name_tables_derive_from_the_integer_ranges() -> None:
    assert {V(t) for t in INTEGER_TYPES} == set(INT_RANGES)
    assert INTEGER_TYPES | {"Float32", "Float64"} == NUMERIC_TYPES
    assert {"Uint8", "Uint16", "Uint32", "Uint64"} == UNSIGNED_TYPES
    assert all(type(t) is str for t in NUMERIC_TYPES)  # plain names: decoded JSON holds strings
