"""Resource transforms and mappings with device-sdk-go's semantics (internal/transformer, v4).

What EdgeX does, and where we deliberately differ:

- Transforms apply only to scalar numeric value types (Int8..Uint64, Float32, Float64); Bool, String, Binary,
  Object and all arrays pass through untouched. A property that is absent or at its neutral value (mask 0,
  shift 0, base 0, scale 1, offset 0) is skipped.
- Read order: mask → shift → base → scale → offset. After every step the result is converted back to the
  resource's value type and range-checked; a result that does not fit is an overflow error.
- mask: bitwise AND with the value's bit pattern in the type's width. shift: a positive shift moves bits left,
  a negative one right (arithmetic for signed types, as Go's `>>`). Mask and shift are integer-only: EdgeX
  applies them to Uint* and, since device-sdk-go 4.0 (PR #1736, 2025), to Int* too; floats skip them.
  EdgeX lets a left shift wrap silently; we report the bits lost as an overflow (the older SDK range-checked).
- base: the reading becomes base ** value (v4's `math.Pow(base, value)`; base 0 means "none").
- scale multiplies, offset adds. For integer types EdgeX v4 multiplies by `intN(scale)`, which truncates a
  fractional scale to 0; we multiply exactly (integers stay exact when scale/offset are whole numbers, so
  Int64/Uint64 keep all their digits) and truncate toward zero like Go's float→int conversion, except that a
  result within float noise below an integer snaps to it (100 * 0.57 is 56.99999999999999 in binary: we give 57).
- NaN: a Float32/Float64 NaN is rejected before any transform (EdgeX's NaNError). ±Inf passes through when no
  transform applies; once one does, a non-finite result is an overflow, like EdgeX's range check.
  EdgeX then publishes the reading as the String "overflow" / "NaN"; TransformError.reading_text carries that
  text so the caller can do the same (or fail the command).
- Write: minimum/maximum are checked first on the value as given (ContractInvalid naming the limit), then
  the reverse in the order offset → scale → base → shift, then mask — v4 (2025) reverses the shift and ANDs
  the mask (it does not "unmask": the bits outside the mask are cleared, preserving them needs a
  read-modify-write that only the driver can do). Every step is range-checked for the value type; a value that
  cannot be represented is the caller's bad input (ContractInvalid), a profile that cannot be reversed (scale 0,
  base 1 or ≤ 0) is a ServerError.
- Mappings: on read the reading text is looked up among the keys and replaced by the mapped text (EdgeX then
  publishes the reading as a String); on write the request text is looked up among the *values* and replaced
  by its key. No match leaves the text unchanged (EdgeX logs and carries on).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

from edgeplane_common.edgex.values import FLOAT32_MAX, FLOAT_TYPES, INT_RANGES, to_float32
from edgeplane_common.errors import ContractInvalid, EdgeError, ErrorKind, ServerError
from edgeplane_common.models import ResourceProperties, ValueType

OVERFLOW_READING: Final = "overflow"
NAN_READING: Final = "NaN"

_INT_BITS: Final = {vt: (hi - lo).bit_length() for vt, (lo, hi) in INT_RANGES.items()}
_SIGNED: Final = frozenset(vt for vt, (lo, _) in INT_RANGES.items() if lo < 0)


class TransformError(EdgeError):
    """A read value that cannot be transformed; `reading_text` is what EdgeX publishes instead."""

    kind = ErrorKind.SERVER_ERROR
    reading_text: str = OVERFLOW_READING


class TransformOverflow(TransformError):
    reading_text = OVERFLOW_READING


class TransformNaN(TransformError):
    reading_text = NAN_READING


def _name(resource: str | None) -> str:
    return f"resource {resource}: " if resource else ""


def _fmt(x: Any) -> str:
    if isinstance(x, float):
        return str(int(x)) if x.is_integer() and abs(x) < 1e16 else repr(x)
    return str(x)


def _float_to_int(x: float) -> int | None:
    """Go's truncating conversion, snapping values a few ulps below an integer up to it; None if not finite."""
    if not math.isfinite(x):
        return None
    r = round(x)
    if r != x and abs(r - x) <= min(4 * math.ulp(x), 1e-6):
        return int(r)
    return math.trunc(x)


class _Step:
    """Converts a step's result back to the value type, raising `fail(why)` when it does not fit."""

    __slots__ = ("fail", "value_type")

    def __init__(self, value_type: ValueType, fail: Any) -> None:
        self.value_type = value_type
        self.fail = fail

    def fit(self, result: float | int, step: str, before: float | int) -> float | int:
        vt = self.value_type
        if vt in FLOAT_TYPES:
            x = float(result)
            if math.isnan(x) or (vt is ValueType.FLOAT32 and abs(x) > FLOAT32_MAX) or math.isinf(x):
                raise self.fail(f"{step} turns {_fmt(before)} into {_fmt(x)}, outside {vt.value}")
            return to_float32(x) if vt is ValueType.FLOAT32 else x
        n = result if isinstance(result, int) else _float_to_int(result)
        lo, hi = INT_RANGES[vt]
        if n is None or not lo <= n <= hi:
            raise self.fail(f"{step} turns {_fmt(before)} into {_fmt(result)}, outside {vt.value} ({lo}..{hi})")
        return n


def _mul(value: float | int, factor: float) -> float | int:
    if isinstance(value, int) and factor.is_integer():
        return value * int(factor)
    return value * factor


def _add(value: float | int, term: float) -> float | int:
    if isinstance(value, int) and term.is_integer():
        return value + int(term)
    return value + term


def _mask(value: int, mask: int, vt: ValueType) -> int:
    bits = _INT_BITS[vt]
    pattern = value & mask & ((1 << bits) - 1)
    if vt in _SIGNED and pattern >> (bits - 1):
        pattern -= 1 << bits
    return pattern


def _shift(value: int, shift: int) -> int:
    return value << shift if shift > 0 else value >> -shift


def _pow(base: float, exponent: float) -> float:
    try:
        return math.pow(base, exponent)
    except (OverflowError, ValueError):
        return math.nan


def _numeric_input(value: Any, vt: ValueType, fail: Any) -> float | int:
    if vt in FLOAT_TYPES:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif isinstance(value, int) and not isinstance(value, bool):
        return value
    elif isinstance(value, float) and value.is_integer():
        return int(value)
    raise fail(f"{value!r} is not a {vt.value} value")


def has_transforms(props: ResourceProperties) -> bool:
    """Whether any of mask/shift/base/scale/offset would change a value (cheap pre-check for hot paths)."""
    return bool(props.mask or props.shift or props.base or props.offset) or props.scale not in (None, 1.0)


def transform_read(value: Any, props: ResourceProperties, *, resource: str | None = None) -> Any:
    """A driver's raw value with mask → shift → base → scale → offset applied (numeric scalar types only).

    Raises TransformNaN for a NaN float, TransformOverflow when a step's result does not fit the value type.
    """
    vt = props.value_type
    if not vt.is_numeric or value is None:
        return value
    is_float = vt in FLOAT_TYPES

    def overflow(why: str) -> TransformOverflow:
        return TransformOverflow(f"{_name(resource)}{vt.value} value {_fmt(value)} overflows: {why}")

    x = _numeric_input(value, vt, lambda why: TransformError(f"{_name(resource)}{why}"))
    if is_float and math.isnan(x):
        raise TransformNaN(f"{_name(resource)}{vt.value} value is NaN")
    if not has_transforms(props):
        return x
    step = _Step(vt, overflow)
    if not is_float:
        assert isinstance(x, int)
        if props.mask:
            x = _mask(x, props.mask, vt)
        if props.shift:
            x = int(step.fit(_shift(x, props.shift), f"shift {props.shift}", x))
    if props.base:
        x = step.fit(_pow(props.base, x), f"base {_fmt(props.base)}", x)
    if props.scale is not None and props.scale != 1.0:
        x = step.fit(_mul(x, props.scale), f"scale {_fmt(props.scale)}", x)
    if props.offset:
        x = step.fit(_add(x, props.offset), f"offset {_fmt(props.offset)}", x)
    return x


def _check_limits(x: float | int, props: ResourceProperties, resource: str | None) -> None:
    vt = props.value_type
    if isinstance(x, float) and math.isnan(x) and (props.minimum is not None or props.maximum is not None):
        raise ContractInvalid(f"{_name(resource)}NaN is not within the {vt.value} limits of this resource")
    if props.maximum is not None and x > props.maximum:
        raise ContractInvalid(f"{_name(resource)}value {_fmt(x)} is above the maximum {_fmt(props.maximum)}")
    if props.minimum is not None and x < props.minimum:
        raise ContractInvalid(f"{_name(resource)}value {_fmt(x)} is below the minimum {_fmt(props.minimum)}")


def transform_write(value: Any, props: ResourceProperties, *, resource: str | None = None) -> Any:
    """A write value checked against minimum/maximum, then reverse-transformed to the raw value for the driver
    (offset → scale → base → shift, then mask), each step range-checked for the value type.

    Raises ContractInvalid for a value outside the limits or one whose raw form does not fit the type,
    ServerError for transforms that cannot be reversed (scale 0, base 1 or ≤ 0).
    """
    vt = props.value_type
    if not vt.is_numeric or value is None:
        return value

    def bad(why: str) -> ContractInvalid:
        return ContractInvalid(f"{_name(resource)}cannot write {vt.value} value {_fmt(value)}: {why}")

    x = _numeric_input(value, vt, bad)
    _check_limits(x, props, resource)
    if not has_transforms(props):
        return x
    step = _Step(vt, bad)
    if props.offset:
        x = step.fit(_add(x, -props.offset), f"reversing offset {_fmt(props.offset)}", x)
    if props.scale is not None and props.scale != 1.0:
        if props.scale == 0:
            raise ServerError(f"{_name(resource)}scale 0 cannot be reversed for a write")
        if isinstance(x, int) and props.scale.is_integer() and x % int(props.scale) == 0:
            x = step.fit(x // int(props.scale), f"reversing scale {_fmt(props.scale)}", x)
        else:
            x = step.fit(x / props.scale, f"reversing scale {_fmt(props.scale)}", x)
    if props.base:
        if props.base <= 0 or props.base == 1:
            raise ServerError(f"{_name(resource)}base {_fmt(props.base)} cannot be reversed for a write")
        if x <= 0:
            raise bad(f"base {_fmt(props.base)} needs a value above 0 to reverse")
        x = step.fit(math.log(x) / math.log(props.base), f"reversing base {_fmt(props.base)}", x)
    if vt not in FLOAT_TYPES:
        assert isinstance(x, int)
        if props.shift:
            x = int(step.fit(_shift(x, -props.shift), f"reversing shift {props.shift}", x))
        if props.mask:
            x = _mask(x, props.mask, vt)
    return x


def map_read(value_str: str, mappings: Mapping[str, str] | None) -> str:
    """The mapped text for a reading's text, else `value_str` unchanged.

    EdgeX turns a mapped reading into a String reading: `value_str in mappings` tells whether that happened."""
    if mappings:
        return mappings.get(value_str, value_str)
    return value_str


def map_write(value_str: str, mappings: Mapping[str, str] | None) -> str:
    """The device-side text for a write: the key whose mapped value equals `value_str`, else `value_str`."""
    if mappings:
        for key, mapped in mappings.items():
            if mapped == value_str:
                return key
    return value_str


__all__ = [
    "NAN_READING",
    "OVERFLOW_READING",
    "TransformError",
    "TransformNaN",
    "TransformOverflow",
    "has_transforms",
    "map_read",
    "map_write",
    "transform_read",
    "transform_write",
]
