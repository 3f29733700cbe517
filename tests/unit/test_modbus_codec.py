"""Modbus codec and attributes, checked against registers packed independently with `struct` and byte lists."""

from __future__ import annotations

import math
import re
import struct
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from device_modbus.attributes import (
    ModbusAttributes,
    ModbusProtocol,
    PrimaryTable,
    SerialConnection,
    TcpConnection,
    parse_attributes,
    parse_protocols,
    parse_starting_address,
)
from device_modbus.codec import RegisterBlock, compile_codec, decode, encode, register_count
from edgeplane_common.edgex.values import to_float32
from edgeplane_common.errors import ContractInvalid, ServerError
from edgeplane_common.models import ValueType as V
from edgeplane_common.models.enums import normalize_value_type
from tests.support.reference import REFERENCE, needs_reference

SAMPLES = (REFERENCE or Path("/nonexistent")) / "edgex-samples" / "modbus"

CODES = {
    V.INT16: "h",
    V.UINT16: "H",
    V.INT32: "i",
    V.UINT32: "I",
    V.INT64: "q",
    V.UINT64: "Q",
    V.FLOAT32: "f",
    V.FLOAT64: "d",
}
SWAPS = [(False, False), (True, False), (False, True), (True, True)]


def reference_registers(value: Any, code: str, byte_swap: bool, word_swap: bool) -> list[int]:
    """Big-endian bytes split into words; word swap reverses the words, byte swap each word's two bytes."""
    data = struct.pack(">" + code, value)
    words = [data[i : i + 2] for i in range(0, len(data), 2)]
    if word_swap:
        words.reverse()
    if byte_swap:
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


def values_for(vt: V) -> st.SearchStrategy[Any]:
    if vt is V.FLOAT32:
        return st.floats(width=32)
    if vt is V.FLOAT64:
        return st.floats()
    bits = struct.calcsize(CODES[vt]) * 8
    signed = CODES[vt].islower()
    return st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else st.integers(0, 2**bits - 1)


def same(a: Any, b: Any, code: str) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return bool(struct.pack(">" + code, a) == struct.pack(">" + code, b))  # bit-exact, NaN-safe
    return bool(a == b)


def attrs(table: str = "HOLDING_REGISTERS", address: Any = 0, **kw: Any) -> ModbusAttributes:
    return parse_attributes({"primaryTable": table, "startingAddress": address, **kw})


# ------------------------------------------------------------------------------------- numeric types x swaps


@pytest.mark.parametrize(("byte_swap", "word_swap"), SWAPS)
@pytest.mark.parametrize("vt", list(CODES))
@settings(deadline=None)  # timing varies on a shared machine; tests never assert it
@given(data=st.data())
def test_every_type_and_swap_matches_independent_packing(
    vt: V, byte_swap: bool, word_swap: bool, data: st.DataObject
) -> None:
    value = data.draw(values_for(vt))
    a = attrs(isByteSwap=byte_swap, isWordSwap=word_swap)
    expected = reference_registers(value, CODES[vt], byte_swap, word_swap)
    assert register_count(a, vt) == len(expected)
    assert encode(value, a, vt) == expected
    assert same(decode(expected, a, vt), value, CODES[vt])


@pytest.mark.parametrize(
    ("vt", "value", "byte_swap", "word_swap", "registers"),
    [
        # device-modbus-go's swap32BitDataBytes: ABCD → BADC (byte), CDAB (word), DCBA (both).
        (V.FLOAT32, 1.0, False, False, [0x3F80, 0x0000]),
        (V.FLOAT32, 1.0, True, False, [0x803F, 0x0000]),
        (V.FLOAT32, 1.0, False, True, [0x0000, 0x3F80]),
        (V.FLOAT32, 1.0, True, True, [0x0000, 0x803F]),
        (V.UINT32, 0x01020304, False, False, [0x0102, 0x0304]),
        (V.UINT32, 0x01020304, True, False, [0x0201, 0x0403]),
        (V.UINT32, 0x01020304, False, True, [0x0304, 0x0102]),
        (V.INT32, -2, True, True, [0xFEFF, 0xFFFF]),
        # 64-bit word swap is the fully reversed word order (GH EF CD AB), not a swap inside each half.
        (V.UINT64, 0x0102030405060708, False, False, [0x0102, 0x0304, 0x0506, 0x0708]),
        (V.UINT64, 0x0102030405060708, False, True, [0x0708, 0x0506, 0x0304, 0x0102]),
        (V.UINT64, 0x0102030405060708, True, False, [0x0201, 0x0403, 0x0605, 0x0807]),
        (V.UINT64, 0x0102030405060708, True, True, [0x0807, 0x0605, 0x0403, 0x0201]),
        (V.FLOAT64, 1.0, False, True, [0x0000, 0x0000, 0x0000, 0x3FF0]),
        # 16-bit values: byte swap swaps the two bytes, word swap has nothing to swap.
        (V.INT16, -2, False, False, [0xFFFE]),
        (V.UINT16, 0x1234, True, False, [0x3412]),
        (V.UINT16, 0x1234, False, True, [0x1234]),
    ],
)
def test_known_register_layouts(vt: V, value: Any, byte_swap: bool, word_swap: bool, registers: list[int]) -> None:
    a = attrs(isByteSwap=byte_swap, isWordSwap=word_swap)
    assert encode(value, a, vt) == registers
    assert decode(registers, a, vt) == value


# ------------------------------------------------------------------------------------------------- rawType


@pytest.mark.parametrize("raw", [V.INT16, V.UINT16, V.INT32, V.UINT32, V.INT64, V.UINT64])
@pytest.mark.parametrize("vt", [V.FLOAT32, V.FLOAT64])
@pytest.mark.parametrize(("byte_swap", "word_swap"), SWAPS)
@settings(deadline=None)
@given(data=st.data())
def test_integer_raw_type_into_float_resource(
    raw: V, vt: V, byte_swap: bool, word_swap: bool, data: st.DataObject
) -> None:
    n = data.draw(values_for(raw))
    a = attrs(rawType=raw.value.upper(), isByteSwap=byte_swap, isWordSwap=word_swap)
    registers = reference_registers(n, CODES[raw], byte_swap, word_swap)
    value = decode(registers, a, vt)
    assert value == (to_float32(float(n)) if vt is V.FLOAT32 else float(n))
    if value == n:  # exactly representable: writing it back gives the same registers
        assert encode(value, a, vt) == registers


@pytest.mark.parametrize(
    ("raw", "vt", "registers", "value"),
    [
        (V.INT16, V.FLOAT32, [0xFF29], -215.0),  # the EdgeX sample's RoomTemperature pattern
        (V.UINT16, V.FLOAT64, [0xFF29], 65321.0),
        (V.INT32, V.FLOAT64, [0xFFFF, 0xFF29], -215.0),  # EdgeX 4's Int32 rawType
        (V.FLOAT32, V.INT32, reference_registers(2.7, "f", False, False), 2),  # float → int truncates
        (V.FLOAT32, V.INT32, reference_registers(-2.7, "f", False, False), -2),
        (V.FLOAT64, V.FLOAT32, reference_registers(0.1, "d", False, False), to_float32(0.1)),
        (V.INT16, V.INT32, [0x8000], -32768),
        (V.UINT32, V.UINT64, [0xFFFF, 0xFFFF], 2**32 - 1),
    ],
)
def test_raw_type_conversions(raw: V, vt: V, registers: list[int], value: Any) -> None:
    a = attrs(rawType=raw.value)
    result = decode(registers, a, vt)
    assert result == value
    assert type(result) is type(value)


def test_raw_type_write_rounds_reverse_scaled_floats() -> None:
    a = attrs(rawType="Int16")
    assert encode(212.99999999999997, a, V.FLOAT32) == [213]  # 21.3 / 0.1; EdgeX's truncation would write 212
    assert encode(-0.5, a, V.FLOAT64) == [0xFFFF]  # half away from zero
    assert encode(2.5, a, V.FLOAT64) == [3]
    with pytest.raises(ContractInvalid, match=r"Float32 value 40000\.0 as rawType Int16: out of range"):
        encode(40000.0, a, V.FLOAT32)
    with pytest.raises(ContractInvalid, match="integer register cannot hold"):
        encode(math.nan, a, V.FLOAT32)
    with pytest.raises(ContractInvalid, match=r"out of range -32768\.\.32767"):
        encode(40000, attrs(rawType="Int16"), V.INT32)


def test_raw_values_that_do_not_fit_the_resource_type_are_errors() -> None:
    with pytest.raises(ServerError, match="does not fit Int16"):
        decode([0x0001, 0x0000], attrs(rawType="Int32"), V.INT16)
    with pytest.raises(ServerError, match="does not fit Int32"):
        decode(reference_registers(math.nan, "f", False, False), attrs(rawType="Float32"), V.INT32)
    with pytest.raises(ServerError, match="does not fit Float32"):
        decode(reference_registers(1e300, "d", False, False), attrs(rawType="Float64"), V.FLOAT32)


# ------------------------------------------------------------------------------------------- coalesced reads


@settings(deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(list(CODES)), st.sampled_from(SWAPS), st.integers(0, 3), st.data()),
        min_size=1,
        max_size=10,
    )
)
def test_decode_block_matches_decode_for_resources_in_one_read(layout: list[Any]) -> None:
    base = 100
    words: list[int] = []
    placed = []
    for vt, (byte_swap, word_swap), gap, data in layout:
        words.extend([0xDEAD] * gap)  # bridged gap
        value = data.draw(values_for(vt))
        regs = reference_registers(value, CODES[vt], byte_swap, word_swap)
        codec = compile_codec(attrs(address=base + len(words), isByteSwap=byte_swap, isWordSwap=word_swap), vt)
        placed.append((codec, len(words), value, regs))
        words.extend(regs)
    block = RegisterBlock(words)
    for codec, offset, value, regs in placed:
        assert codec.address - base == offset
        assert same(codec.decode_block(block, offset), value, CODES[codec.value_type])
        assert same(codec.decode(regs), value, CODES[codec.value_type])


def test_short_or_bad_register_data_is_reported() -> None:
    codec = compile_codec(attrs(), V.UINT32)
    with pytest.raises(ServerError, match="got 1 values, need 2"):
        codec.decode([1])
    with pytest.raises(ServerError, match="got 1 values, need 2"):
        codec.decode_block(RegisterBlock([1, 2, 3]), 2)
    with pytest.raises(ServerError, match=r"0\.\.65535"):
        codec.decode_block(RegisterBlock([70000, 1]), 0)
    assert codec.decode([0, 5, 99]) == 5  # extra registers are ignored


# ------------------------------------------------------------------------------------------- bools and bits


def test_bool_in_coils_and_discrete_inputs() -> None:
    for table in ("COILS", "DISCRETE_INPUTS"):
        a = attrs(table, 14)
        assert register_count(a, V.BOOL) == 1
        assert decode([True], a, V.BOOL) is True
        assert decode([0], a, V.BOOL) is False
    assert encode(True, attrs("COILS", 0), V.BOOL) == [True]
    assert encode(0, attrs("COILS", 0), V.BOOL) == [False]
    with pytest.raises(ContractInvalid, match="read-only"):
        encode(True, attrs("DISCRETE_INPUTS", 0), V.BOOL)
    with pytest.raises(ContractInvalid, match="cannot write 'yes' to a Bool"):
        encode("yes", attrs("COILS", 0), V.BOOL)


def test_bool_array_in_coils() -> None:
    a = attrs("COILS", 8, arrayLength=3)
    assert register_count(a, V.BOOL_ARRAY) == 3
    assert decode([1, 0, 1, 1], a, V.BOOL_ARRAY) == [True, False, True]
    assert encode([False, True, True], a, V.BOOL_ARRAY) == [False, True, True]
    with pytest.raises(ContractInvalid, match="list of 3 values"):
        encode([True], a, V.BOOL_ARRAY)


@pytest.mark.parametrize("bit", range(16))
@settings(deadline=None)
@given(word=st.integers(0, 0xFFFF), on=st.booleans())
def test_bit_addressing_reads_and_read_modify_writes_one_bit(bit: int, word: int, on: bool) -> None:
    codec = compile_codec(attrs("HOLDING_REGISTERS", f"10.{bit}"), V.BOOL)
    assert (codec.address, codec.count, codec.needs_current) == (10, 1, True)
    assert codec.decode([word]) is bool(word & (1 << bit))
    written = codec.encode(on, current=[word])
    expected = word | (1 << bit) if on else word & ~(1 << bit)
    assert written == [expected]  # every other bit is preserved
    assert codec.decode(written) is on


def test_bit_addressing_with_byte_swap_numbers_bits_of_the_swapped_word() -> None:
    codec = compile_codec(attrs("INPUT_REGISTERS", "3.0", isByteSwap=True), V.BOOL)
    assert codec.decode([0x0100]) is True  # wire 01 00 is the word 0x0001 once swapped
    assert codec.decode([0x0001]) is False
    writable = compile_codec(attrs("HOLDING_REGISTERS", "3.0", isByteSwap=True), V.BOOL)
    assert writable.encode(True, current=[0x0000]) == [0x0100]


def test_bit_write_needs_the_current_register() -> None:
    codec = compile_codec(attrs("HOLDING_REGISTERS", "10.10"), V.BOOL)
    with pytest.raises(ServerError, match="needs the register's current value"):
        codec.encode(True)


def test_bool_in_a_whole_register() -> None:
    codec = compile_codec(attrs("HOLDING_REGISTERS", 4), V.BOOL)
    assert not codec.needs_current
    assert codec.decode([0]) is False
    assert codec.decode([0x8000]) is True  # any non-zero register is true
    assert codec.encode(True) == [1]
    assert codec.encode(False) == [0]


# ------------------------------------------------------------------------------------------------- strings


@pytest.mark.parametrize(
    ("size", "text", "registers"),
    [
        (2, "ABC", [0x4142, 0x4300]),  # odd length: NUL-padded
        (2, "ABCD", [0x4142, 0x4344]),  # exact fit, no terminator
        (1, "", [0x0000]),
        (3, "é!", [0xC3A9, 0x2100, 0x0000]),  # UTF-8
    ],
)
def test_strings_two_characters_per_register(size: int, text: str, registers: list[int]) -> None:
    a = attrs("HOLDING_REGISTERS", 15, stringRegisterSize=size)
    assert register_count(a, V.STRING) == size
    assert encode(text, a, V.STRING) == registers
    assert decode(registers, a, V.STRING) == text


def test_string_decoding_strips_nuls_and_stale_bytes() -> None:
    a = attrs("INPUT_REGISTERS", 1, stringRegisterSize=4)
    assert decode([0x0000, 0x4142, 0x4300, 0x0000], a, V.STRING) == "ABC"  # NULs at both ends, as EdgeX
    assert decode([0x4849, 0x0058, 0x5959, 0x0000], a, V.STRING) == "HI"  # stale "XYY" after the terminator
    assert decode([0xFF41, 0x0000, 0x0000, 0x0000], a, V.STRING) == "\ufffdA"  # invalid UTF-8 is replaced


def test_string_byte_swap() -> None:
    a = attrs("HOLDING_REGISTERS", 0, stringRegisterSize=2, isByteSwap=True)
    assert encode("ABC", a, V.STRING) == [0x4241, 0x0043]
    assert decode([0x4241, 0x0043], a, V.STRING) == "ABC"


def test_string_too_long_is_refused() -> None:
    a = attrs("HOLDING_REGISTERS", 0, stringRegisterSize=2)
    with pytest.raises(ContractInvalid, match=r"string of 5 bytes does not fit stringRegisterSize 2 \(4 bytes\)"):
        encode("ABCDE", a, V.STRING)
    with pytest.raises(ContractInvalid, match="not valid Unicode"):
        encode("\ud800", a, V.STRING)  # JSON can carry a lone surrogate


@settings(deadline=None)
@given(
    st.text(alphabet=st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=20), st.booleans()
)
def test_strings_round_trip(text: str, byte_swap: bool) -> None:
    size = max(1, (len(text.encode()) + 1) // 2)
    a = attrs("HOLDING_REGISTERS", 0, stringRegisterSize=size, isByteSwap=byte_swap)
    registers = encode(text, a, V.STRING)
    assert len(registers) == size
    raw = b"".join(struct.pack("<H" if byte_swap else ">H", r) for r in registers)
    assert raw.rstrip(b"\0") == text.encode()  # independent view of the register bytes
    assert decode(registers, a, V.STRING) == text


# -------------------------------------------------------------------------------------------------- arrays


def test_numeric_arrays() -> None:
    a = attrs(arrayLength=3)
    assert register_count(a, V.INT16_ARRAY) == 3
    assert encode([1, -2, 3], a, V.INT16_ARRAY) == [1, 0xFFFE, 3]
    assert decode([1, 0xFFFE, 3], a, V.INT16_ARRAY) == [1, -2, 3]
    f = attrs(arrayLength=2, isWordSwap=True)
    expected = reference_registers(1.5, "f", False, True) + reference_registers(-2.0, "f", False, True)
    assert encode([1.5, -2.0], f, V.FLOAT32_ARRAY) == expected  # each element word-swapped on its own
    assert decode(expected, f, V.FLOAT32_ARRAY) == [1.5, -2.0]
    r = attrs(arrayLength=2, rawType="Int16")
    assert decode([0xFFFF, 2], r, V.FLOAT64_ARRAY) == [-1.0, 2.0]
    with pytest.raises(ContractInvalid, match="list of 3 values"):
        encode([1, 2], a, V.INT16_ARRAY)


# -------------------------------------------------------------------------------------------- bad resources


@pytest.mark.parametrize(
    ("attributes", "vt", "fragment"),
    [
        ({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 0}, V.STRING, "String needs stringRegisterSize"),
        ({"primaryTable": "COILS", "startingAddress": 0}, V.INT32, "Int32 needs INPUT_REGISTERS or HOLDING_REGISTERS"),
        ({"primaryTable": "COILS", "startingAddress": 0, "stringRegisterSize": 2}, V.STRING, "String needs"),
        ({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 0}, V.INT8, "Int8 is not supported"),
        ({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 0}, V.BINARY, "Binary is not supported"),
        ({"primaryTable": "HOLDING_REGISTERS", "startingAddress": "1.2"}, V.INT16, "bit address"),
        ({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 0, "rawType": "Int16"}, V.BOOL, "rawType applies"),
        ({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 0}, V.INT16_ARRAY, "needs arrayLength"),
        ({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 0, "arrayLength": 2}, V.INT16, "arrayLength applies"),
        (
            {"primaryTable": "HOLDING_REGISTERS", "startingAddress": 0, "arrayLength": 2},
            V.BOOL_ARRAY,
            "BoolArray needs",
        ),
        (
            {"primaryTable": "HOLDING_REGISTERS", "startingAddress": 0, "arrayLength": 32},
            V.FLOAT64_ARRAY,
            "at most 125",
        ),
        ({"primaryTable": "HOLDING_REGISTERS", "startingAddress": 65535}, V.UINT32, "past the last address"),
    ],
)
def test_unusable_resources_are_contract_errors(attributes: dict[str, Any], vt: V, fragment: str) -> None:
    with pytest.raises(ContractInvalid, match=re.escape(fragment)) as info:
        compile_codec(attributes, vt, resource="Res1")
    assert info.value.message.startswith("resource Res1: ")
    assert info.value.status_code == 400


def test_codecs_are_cached_per_attributes_and_type() -> None:
    a = attrs(address=7, rawType="Int16")
    assert compile_codec(a, V.FLOAT32) is compile_codec(attrs(address=7, rawType="int16"), V.FLOAT32)
    assert compile_codec(a, V.FLOAT32) is not compile_codec(a, V.FLOAT64)


def test_read_only_table_and_oversized_writes() -> None:
    with pytest.raises(ContractInvalid, match="INPUT_REGISTERS are read-only"):
        encode(1, attrs("INPUT_REGISTERS"), V.INT16)
    big = attrs(arrayLength=124)
    assert register_count(big, V.UINT16_ARRAY) == 124  # readable in one request…
    with pytest.raises(ContractInvalid, match="at most 123"):  # …but not writable in one
        encode([0] * 124, big, V.UINT16_ARRAY)


# ---------------------------------------------------------------------------------------------- attributes


@pytest.mark.parametrize(
    ("written", "address", "bit"),
    [
        (5, 5, None),
        ("5", 5, None),
        (" 42 ", 42, None),
        ("0x10", 16, None),
        (10.0, 10, None),
        (10.1, 10, 10),  # YAML's reading of the EdgeX sample's `10.10`
        ("10.10", 10, 10),
        ("10.1", 10, 1),  # quoted: taken literally
        ("10.01", 10, 1),
        (10.2, 10, 2),
        (10.15, 10, 15),
        (10.05, 10, 5),
        ("65535.15", 65535, 15),
    ],
)
def test_starting_address_and_bit(written: Any, address: int, bit: int | None) -> None:
    assert parse_starting_address(written) == (address, bit)


@pytest.mark.parametrize(
    ("written", "fragment"),
    [
        ("10.16", "bit 16 is out of range 0..15"),
        (10.99, "bit 99 is out of range"),
        (65536, "out of range 0..65535"),
        (-1, "out of range"),
        (True, "must be an integer"),
        ("abc", "must be an integer"),
        (10.123, "register.bit"),
        ("1.2.3", "must be an integer"),
    ],
)
def test_bad_starting_addresses(written: Any, fragment: str) -> None:
    with pytest.raises(ValueError, match=re.escape(fragment)):
        parse_starting_address(written)


def test_attributes_accept_edgex_spellings() -> None:
    a = parse_attributes(
        {
            "PrimaryTable": "discretes_input",
            "STARTINGADDRESS": "7",
            "isbyteswap": "true",
            "IsWordSwap": 1,
            "rawType": "float32",
            "unrelated": "ignored",
        }
    )
    assert a.primary_table is PrimaryTable.DISCRETE_INPUTS
    assert (a.starting_address, a.bit, a.raw_type) == (7, None, V.FLOAT32)
    assert a.is_byte_swap
    assert a.is_word_swap
    assert parse_attributes({"primaryTable": "holding-registers", "startingAddress": 1}).primary_table.writable


@pytest.mark.parametrize(
    ("attributes", "fragment"),
    [
        ({"primaryTable": "COIL", "startingAddress": 1}, "primaryTable: unknown primaryTable 'COIL'"),
        ({"primaryTable": "COILS"}, "startingAddress: Field required"),
        ({"startingAddress": 1}, "primaryTable: Field required"),
        ({"primaryTable": "COILS", "startingAddress": "1.3"}, "needs a register table, not COILS"),
        ({"primaryTable": "COILS", "startingAddress": 1, "rawType": "Int8"}, "unsupported rawType 'Int8'"),
        ({"primaryTable": "COILS", "startingAddress": 1, "isByteSwap": "yes"}, "isByteSwap: expected true or false"),
        ({"primaryTable": "COILS", "startingAddress": 1, "stringRegisterSize": 124}, "stringRegisterSize"),
        ({"primaryTable": "COILS", "startingAddress": 1, "stringRegisterSize": "x"}, "stringRegisterSize must be"),
        ({}, "primaryTable and startingAddress are required"),
    ],
)
def test_bad_attributes_name_the_resource_and_attribute(attributes: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ContractInvalid, match=re.escape(fragment)) as info:
        parse_attributes(attributes, resource="Pump1")
    assert info.value.message.startswith("resource Pump1: ")


# ------------------------------------------------------------------------------------- EdgeX sample profiles


def sample_resources() -> list[Any]:
    out = []
    for path in sorted(SAMPLES.glob("*.y*ml")):
        doc = yaml.safe_load(path.read_text())
        for r in doc.get("deviceResources") or []:
            out.append(pytest.param(r, id=f"{path.stem}:{r['name']}"))
    return out


@needs_reference
@pytest.mark.parametrize("resource", sample_resources())
def test_every_sample_profile_resource_compiles(resource: dict[str, Any]) -> None:
    vt = normalize_value_type(resource["properties"]["valueType"])
    codec = compile_codec(resource["attributes"], vt, resource=resource["name"])
    assert codec.count >= 1
    assert codec.end <= 0x10000


@needs_reference
def test_sample_profiles_were_found() -> None:
    ids = [p.id or "" for p in sample_resources()]
    counts = {stem: sum(i.startswith(stem + ":") for i in ids) for stem in {i.split(":")[0] for i in ids}}
    assert counts == {
        "modbus.test.device.profile": 7,
        "modbus.test.device.string.profile": 2,
        "taf-modbus-scalability-test-device-profile": 40,
    }


@needs_reference
@pytest.mark.parametrize(
    ("name", "table", "address", "count"),
    [
        ("SwitchA", PrimaryTable.COILS, 0, 1),
        ("SwitchB", PrimaryTable.COILS, 14, 1),
        ("OperationMode", PrimaryTable.HOLDING_REGISTERS, 1, 1),
        ("CommunicationFailure", PrimaryTable.HOLDING_REGISTERS, 10, 1),
        ("FanSpeed", PrimaryTable.HOLDING_REGISTERS, 2, 2),
        ("RoomTemperature", PrimaryTable.INPUT_REGISTERS, 3, 1),
        ("Temperature", PrimaryTable.HOLDING_REGISTERS, 5, 1),
        ("StringA", PrimaryTable.INPUT_REGISTERS, 1, 1),
        ("StringB", PrimaryTable.HOLDING_REGISTERS, 15, 5),
    ],
)
def test_sample_profile_layouts(name: str, table: PrimaryTable, address: int, count: int) -> None:
    resources = {
        r["name"]: r
        for f in ("modbus.test.device.profile.yml", "modbus.test.device.string.profile.yml")
        for r in yaml.safe_load((SAMPLES / f).read_text())["deviceResources"]
    }
    r = resources[name]
    codec = compile_codec(r["attributes"], normalize_value_type(r["properties"]["valueType"]), resource=name)
    assert (codec.table, codec.address, codec.count) == (table, address, count)
    if name == "CommunicationFailure":  # startingAddress: 10.10 → register 10, bit 10
        assert codec.attributes.bit == 10
        assert codec.decode([1 << 10]) is True
        assert codec.decode([0xFFFF & ~(1 << 10)]) is False
    if name == "RoomTemperature":  # rawType Int16 read into Float32 (the SDK then applies scale 0.1)
        assert codec.decode([0xFF29]) == -215.0


# -------------------------------------------------------------------------------------- protocol properties


@needs_reference
def test_sample_devices_protocols_parse() -> None:
    devices = yaml.safe_load((SAMPLES / "modbus.test.devices.yaml").read_text())["deviceList"]
    conns = {d["name"]: parse_protocols(d["protocols"], device=d["name"]) for d in devices}
    tcp = conns["Modbus-TCP-test-device"]
    assert isinstance(tcp, TcpConnection)
    assert (tcp.protocol, tcp.address, tcp.port, tcp.unit_id, tcp.timeout, tcp.idle_timeout) == (
        ModbusProtocol.TCP,
        "0.0.0.0",
        1502,
        1,
        5.0,
        5.0,
    )
    assert tcp.framer == "socket"
    rtu = conns["Modbus-RTU-test-device"]
    assert isinstance(rtu, SerialConnection)
    assert (rtu.address, rtu.baud_rate, rtu.data_bits, rtu.stop_bits, rtu.parity) == ("/tmp/slave", 19200, 8, 1, "N")
    assert rtu.framer == "rtu"
    assert tcp.link == conns["Modbus-TCP-Read-String"].link  # same endpoint → one shared link


def test_protocol_properties_as_edgex_sends_them() -> None:
    tcp = parse_protocols({"modbus-tcp": {"Address": "plc1", "Port": "1502", "UnitID": "7", "Timeout": "2"}})
    assert isinstance(tcp, TcpConnection)
    assert (tcp.port, tcp.unit_id, tcp.timeout, tcp.idle_timeout) == (1502, 7, 2.0, 5.0)
    over = parse_protocols(
        {"MODBUS-RTU-OVER-TCP": {"address": "gw", "port": 4001, "unitId": "0x11", "timeout": "500ms", "IdleTimeout": 0}}
    )
    assert isinstance(over, TcpConnection)
    assert (over.protocol, over.framer, over.unit_id, over.timeout, over.idle_timeout) == (
        ModbusProtocol.RTU_OVER_TCP,
        "rtu",
        17,
        0.5,
        0.0,
    )
    assert over.link != parse_protocols({"modbus-tcp": {"Address": "gw", "Port": 4001}}).link
    rtu = parse_protocols(
        {
            "modbus-rtu": {"Address": "/dev/ttyUSB0,19200,8,1,N", "BaudRate": 9600, "Parity": "even", "StopBits": "2"},
            "other": {"x": 1},
        }
    )
    assert isinstance(rtu, SerialConnection)
    assert (rtu.address, rtu.baud_rate, rtu.parity, rtu.stop_bits, rtu.link) == (
        "/dev/ttyUSB0",
        9600,
        "E",
        2.0,
        ("serial", "/dev/ttyUSB0"),
    )
    ascii_ = parse_protocols({"modbus-ascii": {"Address": "/dev/ttyS1", "DataBits": "7", "Parity": "O"}})
    assert isinstance(ascii_, SerialConnection)
    assert (ascii_.framer, ascii_.data_bits, ascii_.parity) == ("ascii", 7, "O")


@pytest.mark.parametrize(
    ("protocols", "fragment"),
    [
        ({"modbus-tcp": {"Port": 502}}, "modbus-tcp properties: Address: Field required"),
        ({"modbus-tcp": {"Address": "h", "Port": "0"}}, "Port 0 is not a usable TCP port"),
        ({"modbus-tcp": {"Address": "h", "Port": 70000}}, "Port 70000 is out of range"),
        ({"modbus-tcp": {"Address": "h", "UnitID": 256}}, "UnitID 256 is out of range 0..255"),
        ({"modbus-tcp": {"Address": "h", "Timeout": "soon"}}, "Timeout: invalid duration 'soon'"),
        ({"modbus-tcp": {"Address": "h", "Timeout": 0}}, "Timeout: Input should be greater than 0"),
        ({"modbus-rtu": {"Address": "/dev/x", "Parity": "X"}}, "Parity must be N (none), E (even) or O (odd)"),
        ({"modbus-rtu": {"Address": "/dev/x", "BaudRate": "fast"}}, "BaudRate must be an integer"),
        ({"modbus-rtu": {"Address": "/dev/x", "StopBits": 3}}, "StopBits must be 1, 1.5 or 2"),
        ({"modbus-rtu": {"Address": ",9600"}}, "Address must name the serial port"),
        ({"modbus-tcp": {"Address": "a"}, "modbus-rtu": {"Address": "b"}}, "several Modbus protocols"),
        ({"opcua": {}}, "no Modbus protocol"),
        ({"modbus-tcp": "h:502"}, "modbus-tcp properties must be an object"),
    ],
)
def test_bad_protocol_properties_name_the_device_and_property(protocols: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ContractInvalid, match=re.escape(fragment)) as info:
        parse_protocols(protocols, device="Boiler")
    assert info.value.message.startswith("device Boiler: ")
