"""Resource transforms (device-sdk-go semantics): order, per-step range checks, NaN, limits, and mappings."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from edgeplane_common.edgex.transforms import (
    NAN_READING,
    OVERFLOW_READING,
    TransformError,
    TransformNaN,
    TransformOverflow,
    has_transforms,
    map_read,
    map_write,
    transform_read,
    transform_write,
)
from edgeplane_common.edgex.values import format_value, to_float32
from edgeplane_common.errors import ContractInvalid, ServerError
from edgeplane_common.models import DeviceProfile, ResourceProperties
from edgeplane_common.models import ValueType as V
from tests.support.reference import REFERENCE, needs_reference

SAMPLES = (REFERENCE or Path("/nonexistent")) / "edgex-samples" / "modbus"


def props(value_type: V | str, **kw: Any) -> ResourceProperties:
    return ResourceProperties.model_validate({"valueType": value_type, "readWrite": "RW", **kw})


# ------------------------------------------------------------------------------------------------------ read


def test_read_applies_mask_shift_base_scale_offset_in_that_order() -> None:
    p = props(V.UINT16, mask=0x0FF0, shift=-4, scale=2, offset=1)
    # (0x1234 & 0x0FF0) >> 4 = 0x23 = 35; 35 * 2 + 1 = 71 (offset before scale would give 72).
    assert transform_read(0x1234, p) == 71
    # base comes after shift and before scale: 2 ** 3 = 8; 8 * 10 + 1 = 81.
    assert transform_read(3, props(V.UINT32, base=2, scale=10, offset=1)) == 81
    # mask before shift: shifting first would keep the 0x4 nibble.
    assert transform_read(0xF4, props(V.UINT8, mask=0xF0, shift=-4)) == 0x0F


@pytest.mark.parametrize(
    ("vt", "raw", "kw", "expected"),
    [
        (V.UINT16, 0xABCD, {"mask": 0x00FF}, 0xCD),
        (V.UINT16, 0x00AB, {"shift": 8}, 0xAB00),  # positive shift: left
        (V.UINT32, 0xAB00, {"shift": -8}, 0xAB),  # negative shift: right
        (V.INT16, -1, {"mask": 0xFF}, 255),  # mask works on the two's-complement bit pattern
        (V.INT16, -256, {"shift": -4}, -16),  # signed right shift is arithmetic (Go's >>)
        (V.INT8, -1, {"mask": 0x80}, -128),
        (V.UINT32, 10, {"base": 2}, 1024),  # base ** value
        (V.FLOAT64, 2.0, {"base": 10}, 100.0),
        (V.INT16, 215, {"scale": 0.1}, 21),  # integer types truncate toward zero
        (V.INT16, -215, {"scale": 0.1}, -21),
        (V.INT16, 2653, {"scale": 0.01}, 26),  # EdgeX's documented example
        (V.INT32, 100, {"scale": 0.57}, 57),  # 56.99999999999999 in binary snaps to 57
        (V.FLOAT32, 215.0, {"scale": 0.1}, 21.5),
        (V.FLOAT32, 1.0, {"scale": 0.1}, to_float32(0.1)),  # results stay float32
        (V.FLOAT64, 1.0, {"offset": -273.15}, 1.0 - 273.15),
        (V.INT64, 2**61 + 1, {"offset": 1, "scale": 2}, 2**62 + 3),  # exact integer arithmetic
        (V.UINT64, 2**64 - 2, {"offset": 1}, 2**64 - 1),
        (V.FLOAT32, 3.0, {"mask": 1, "shift": 3}, 3.0),  # mask/shift skip floats
        (V.INT16, 7, {"scale": 1, "offset": 0, "base": 0, "mask": 0, "shift": 0}, 7),  # neutral values
    ],
)
def test_read_single_steps(vt: V, raw: Any, kw: dict[str, Any], expected: Any) -> None:
    result = transform_read(raw, props(vt, **kw))
    assert result == expected
    assert type(result) is type(expected)


def test_int64_stays_exact_with_whole_number_scale_and_offset() -> None:
    big = 2**61 + 1
    assert transform_read(big, props(V.INT64, scale=2, offset=1)) == 2 * big + 1  # float math would lose the +1s
    with pytest.raises(TransformOverflow):
        transform_read(2**62 + 1, props(V.INT64, scale=2))


@pytest.mark.parametrize(
    ("vt", "raw", "kw", "step"),
    [
        (V.INT16, 20000, {"scale": 2}, "scale 2"),
        (V.UINT16, 65535, {"offset": 1}, "offset 1"),
        (V.UINT8, 0, {"offset": -1}, "offset -1"),
        (V.UINT16, 0x8000, {"shift": 1}, "shift 1"),  # EdgeX wraps silently; we report the lost bit
        (V.INT32, 40, {"base": 2}, "base 2"),
        (V.UINT64, 2**64 - 1, {"offset": 1}, "offset 1"),
        (V.FLOAT32, 3e38, {"scale": 10}, "scale 10"),
        (V.FLOAT64, 1e308, {"scale": 10}, "scale 10"),
        (V.FLOAT64, -2.0, {"base": 0.5, "scale": 1e308}, "scale"),
    ],
)
def test_read_overflow_names_resource_value_type_and_step(vt: V, raw: Any, kw: dict[str, Any], step: str) -> None:
    with pytest.raises(TransformOverflow) as info:
        transform_read(raw, props(vt, **kw), resource="Temp")
    err = info.value
    assert isinstance(err, TransformError)
    assert err.reading_text == OVERFLOW_READING == "overflow"
    assert err.status_code == 500
    assert "resource Temp" in err.message
    assert vt.value in err.message
    assert step in err.message


@pytest.mark.parametrize("vt", [V.FLOAT32, V.FLOAT64])
def test_nan_is_rejected_before_any_transform(vt: V) -> None:
    for p in (props(vt), props(vt, scale=2)):
        with pytest.raises(TransformNaN, match=r"resource R: .*NaN") as info:
            transform_read(math.nan, p, resource="R")
        assert info.value.reading_text == NAN_READING == "NaN"


def test_infinity_passes_untransformed_but_overflows_once_transformed() -> None:
    assert transform_read(math.inf, props(V.FLOAT64)) == math.inf
    assert transform_read(-math.inf, props(V.FLOAT32)) == -math.inf
    with pytest.raises(TransformOverflow):
        transform_read(math.inf, props(V.FLOAT64, offset=1))


@pytest.mark.parametrize(
    ("vt", "value"),
    [
        (V.BOOL, True),
        (V.STRING, "12"),
        (V.INT16_ARRAY, [1, 2]),
        (V.FLOAT32_ARRAY, [1.5]),
        (V.BINARY, b"\x01"),
    ],
)
def test_non_numeric_and_array_types_are_not_transformed(vt: V, value: Any) -> None:
    p = props(vt, scale=10, offset=5, mask=1, shift=1, base=2)
    assert transform_read(value, p) == value
    assert transform_write(value, p) == value


def test_driver_value_of_the_wrong_kind_is_an_error() -> None:
    with pytest.raises(TransformError, match="'x' is not a Int16 value"):
        transform_read("x", props(V.INT16, scale=2))
    assert transform_read(4.0, props(V.INT16, scale=2)) == 8  # whole floats are accepted for integer types


# ----------------------------------------------------------------------------------------------------- write


@pytest.mark.parametrize(
    ("vt", "value", "kw", "fragment"),
    [
        (V.INT16, 12, {"minimum": 0, "maximum": 11}, "above the maximum 11"),
        (V.INT16, -1, {"minimum": 0, "maximum": 11}, "below the minimum 0"),
        (V.FLOAT32, 30.5, {"maximum": 30.25}, "above the maximum 30.25"),
        (V.UINT64, 2**64 - 1, {"maximum": 1e10}, "above the maximum 10000000000"),
        (V.FLOAT64, math.nan, {"minimum": 0}, "NaN is not within"),
    ],
)
def test_write_rejects_values_outside_the_limits(vt: V, value: Any, kw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ContractInvalid, match=re.escape(fragment)) as info:
        transform_write(value, props(vt, **kw), resource="Setpoint")
    assert info.value.status_code == 400
    assert "resource Setpoint" in info.value.message


def test_limits_are_checked_on_the_value_before_reversing_transforms() -> None:
    p = props(V.INT16, scale=0.1, maximum=30)
    assert transform_write(25, p) == 250  # raw 250 is far above 30: the limit is on the engineering value
    with pytest.raises(ContractInvalid, match="maximum 30"):
        transform_write(31, p)
    assert transform_write(0, props(V.INT16, minimum=0, maximum=0)) == 0  # limits are inclusive


@pytest.mark.parametrize(
    ("vt", "value", "kw", "expected"),
    [
        (V.INT16, 30, {"scale": 2, "offset": 10}, 10),  # (30 - 10) / 2; reversing in read order would give 5
        (V.INT16, 21, {"scale": 0.1}, 210),  # 21 / 0.1 = 209.99999999999997 snaps to 210
        (V.FLOAT32, 21.3, {"scale": 0.1}, 213.0),
        (V.FLOAT64, 1.0, {"offset": -273.15}, 274.15),
        (V.UINT32, 1024, {"base": 2}, 10),  # log2
        (V.UINT16, 0xAB, {"mask": 0xFF00, "shift": -8}, 0xAB00),  # shift reversed, then masked
        (V.UINT16, 0x1F, {"mask": 0x0F}, 0x0F),  # the mask clears bits outside it
        (V.INT64, 2**63 - 1, {"offset": 1}, 2**63 - 2),  # exact integer arithmetic
        (V.INT32, 7, {}, 7),
    ],
)
def test_write_reverses_offset_scale_base_shift_then_masks(
    vt: V, value: Any, kw: dict[str, Any], expected: Any
) -> None:
    result = transform_write(value, props(vt, **kw))
    assert result == expected
    assert type(result) is type(expected)


@pytest.mark.parametrize(
    ("vt", "value", "kw", "fragment"),
    [
        (V.INT16, 4000, {"scale": 0.1}, "reversing scale 0.1 turns 4000 into 40000"),
        (V.UINT16, -5, {"offset": 10}, "reversing offset 10"),
        (V.UINT16, 0x1AB, {"shift": -8}, "reversing shift -8"),
        (V.UINT32, 0, {"base": 2}, "needs a value above 0"),
        (V.FLOAT32, 3e38, {"scale": 0.01}, "reversing scale 0.01"),
    ],
)
def test_write_that_does_not_fit_the_type_is_bad_input(vt: V, value: Any, kw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ContractInvalid, match=re.escape(fragment)) as info:
        transform_write(value, props(vt, **kw), resource="R")
    assert vt.value in info.value.message


@pytest.mark.parametrize(
    ("kw", "fragment"), [({"scale": 0}, "scale 0"), ({"base": 1}, "base 1"), ({"base": -2}, "base -2")]
)
def test_irreversible_profile_transforms_are_server_errors(kw: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ServerError, match=fragment):
        transform_write(5, props(V.UINT32, **kw))


@settings(deadline=None)  # timing varies on a shared machine; tests never assert it
@given(raw=st.integers(-1000, 1000), scale=st.integers(1, 50), offset=st.integers(-500, 500))
def test_write_inverts_read_for_whole_number_transforms(raw: int, scale: int, offset: int) -> None:
    p = props(V.INT32, scale=scale, offset=offset)
    assert transform_write(transform_read(raw, p), p) == raw


@settings(deadline=None)
@given(raw=st.integers(-32768, 32767), scale=st.sampled_from([0.1, 0.01, 0.5, 0.25, 0.001]))
def test_float_resource_over_scaled_integers_inverts(raw: int, scale: float) -> None:
    # The EdgeX sample's rawType Int16 + Float32 + scale 0.1 pattern: write(read(raw)) lands within float32
    # rounding of the raw integer, so the codec's round-half-away recovers it exactly.
    p = props(V.FLOAT32, scale=scale)
    back = transform_write(transform_read(float(raw), p), p)
    assert round(back) == raw


@settings(deadline=None)
@given(x=st.integers(0, 0xFF))
def test_bit_field_write_then_read_recovers_the_field(x: int) -> None:
    p = props(V.UINT16, mask=0x0FF0, shift=-4)
    assert transform_read(transform_write(x, p), p) == x


def test_has_transforms() -> None:
    assert not has_transforms(props(V.INT16))
    assert not has_transforms(props(V.INT16, scale=1, offset=0, base=0, mask=0, shift=0))
    for kw in ({"scale": 2}, {"offset": 1}, {"base": 2}, {"mask": 1}, {"shift": -1}):
        assert has_transforms(props(V.INT16, **kw))


# -------------------------------------------------------------------------------------------------- mappings


def test_mappings_both_ways() -> None:
    m = {"true": "ON", "false": "OFF"}
    assert map_read("true", m) == "ON"
    assert map_read("maybe", m) == "maybe"  # no match: unchanged
    assert map_read("true", None) == "true"
    assert map_write("OFF", m) == "false"  # write looks the text up among the mapped values
    assert map_write("true", m) == "true"  # a key is not a mapped value: unchanged
    assert map_write("ON", {}) == "ON"


@needs_reference
def test_sample_profile_mappings_with_formatted_readings() -> None:
    profile = DeviceProfile.model_validate(yaml.safe_load((SAMPLES / "modbus.test.device.profile.yml").read_text()))
    command = profile.command("Values")
    assert command is not None
    ops = {op.device_resource: op for op in command.resource_operations}
    mode = ops["OperationMode"].mappings
    switch = ops["SwitchA"].mappings
    # A read maps the formatted reading text (Int16 3 → "3" → "Dry"; Bool → "true" → "ON").
    assert map_read(format_value(3, V.INT16), mode) == "Dry"
    assert map_read(format_value(7, V.INT16), mode) == "7"  # 7 has no mapping
    assert map_read(format_value(True, V.BOOL), switch) == "ON"
    # A write maps the user's text back to the device value before parsing.
    assert map_write("VAM Normal", mode) == "11"
    assert map_write("OFF", switch) == "false"
    assert ops["Temperature"].mappings is None
