"""Raw Python values ⇄ the text EdgeX puts in a reading's `value` and accepts in a write command.

Reading text follows go-mod-core-contracts (v3/v4) `dtos.NewSimpleReading`:

- Bool → "true"/"false"; integers → decimal;
- Float32/Float64 → Go's `strconv.FormatFloat(v, 'e', -1, bits)`: the shortest digits that read back to the same
  float32/float64, in e-notation with at least two exponent digits ("2.15e+01", "1e-01", "-0e+00"); NaN → "NaN",
  ±Inf → "+Inf"/"-Inf" (Go's spelling);
- numeric and bool arrays → Go's `fmt.Sprintf("%v")` with ", " between elements ("[1, 2, 3]", "[true, false]");
  float arrays use the float format per element ("[1e+00, 2.5e+00]"); StringArray → Go's `json.Marshal`
  (`["a","b"]`, HTML-escaped like Go); String as-is.

Write parsing follows device-sdk-go's `createCommandValueFromDeviceResource`: the JSON value is turned into text
(a JSON number 5 is "5") and parsed with Go's rules — `strconv.ParseBool` spellings, base-10 integers with the
type's range, `ParseFloat` (incl. "NaN"/"Inf", hex floats, and the legacy base64 big-endian float encoding),
arrays as "[1, 2]" (or "1,2").

True/false text has one parser here (`parse_bool`, Go's `strconv.ParseBool`); switches such as query parameters
use it through `parse_flag`, which takes only the words true and false, in any letter case.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final

from edgeplane_common.errors import ContractInvalid, ServerError
from edgeplane_common.models import ValueType

# Inclusive ranges of EdgeX's integer value types (also used by transforms and the Modbus codec).
INT_RANGES: Final[dict[ValueType, tuple[int, int]]] = {
    ValueType.INT8: (-(2**7), 2**7 - 1),
    ValueType.INT16: (-(2**15), 2**15 - 1),
    ValueType.INT32: (-(2**31), 2**31 - 1),
    ValueType.INT64: (-(2**63), 2**63 - 1),
    ValueType.UINT8: (0, 2**8 - 1),
    ValueType.UINT16: (0, 2**16 - 1),
    ValueType.UINT32: (0, 2**32 - 1),
    ValueType.UINT64: (0, 2**64 - 1),
}
FLOAT_TYPES: Final = frozenset({ValueType.FLOAT32, ValueType.FLOAT64})
FLOAT32_MAX: Final = 3.4028234663852886e38

# The same tables by plain name, for code that holds value types as the strings of decoded JSON (event validation,
# core-data's indexes): a str set answers a str faster than a set of enum members does.
NUMERIC_TYPES: Final = frozenset(vt.value for vt in (*INT_RANGES, *FLOAT_TYPES))
INTEGER_TYPES: Final = frozenset(vt.value for vt in INT_RANGES)
UNSIGNED_TYPES: Final = frozenset(vt.value for vt, (lo, _) in INT_RANGES.items() if lo == 0)

ARRAY_ELEMENT: Final[dict[ValueType, ValueType]] = {
    ValueType.BOOL_ARRAY: ValueType.BOOL,
    ValueType.STRING_ARRAY: ValueType.STRING,
    ValueType.UINT8_ARRAY: ValueType.UINT8,
    ValueType.UINT16_ARRAY: ValueType.UINT16,
    ValueType.UINT32_ARRAY: ValueType.UINT32,
    ValueType.UINT64_ARRAY: ValueType.UINT64,
    ValueType.INT8_ARRAY: ValueType.INT8,
    ValueType.INT16_ARRAY: ValueType.INT16,
    ValueType.INT32_ARRAY: ValueType.INT32,
    ValueType.INT64_ARRAY: ValueType.INT64,
    ValueType.FLOAT32_ARRAY: ValueType.FLOAT32,
    ValueType.FLOAT64_ARRAY: ValueType.FLOAT64,
    ValueType.OBJECT_ARRAY: ValueType.OBJECT,
}

_F32 = struct.Struct("<f")


def to_float32(value: float) -> float:
    """`value` rounded to the nearest float32; OverflowError if it is finite but beyond float32's range."""
    result: float = _F32.unpack(_F32.pack(value))[0]
    return result


# --------------------------------------------------------------------------------------------------- formatting


def _special(x: float) -> str | None:
    if x != x:
        return "NaN"
    if x == math.inf:
        return "+Inf"
    if x == -math.inf:
        return "-Inf"
    return None


def format_float64(x: float) -> str:
    """Go's `strconv.FormatFloat(x, 'e', -1, 64)` (the hot-path spelling of `format_float(x, 64)`)."""
    special = _special(x)
    if special is not None:
        return special
    # repr() gives the shortest digits that round-trip (as Go's -1 precision does); only the layout differs.
    s = repr(x)
    sign = ""
    if s[0] == "-":
        sign, s = "-", s[1:]
    mant, _, exp = s.partition("e")
    ip, _, fp = mant.partition(".")
    full = (ip + fp).lstrip("0")
    if not full:
        return sign + "0e+00"
    e10 = (int(exp) if exp else 0) - len(fp) + len(full) - 1
    digits = full.rstrip("0")
    m = digits[0] + "." + digits[1:] if len(digits) > 1 else digits
    return f"{sign}{m}e{'-' if e10 < 0 else '+'}{abs(e10):02d}"


_F32_TEXT: dict[bytes, str] = {}
_F32_TEXT_MAX = 16384  # repeated readings (a value unchanged between polls) skip the digit search
_POW10: Final = {k: 10.0**k for k in range(-46, 40)}  # exact compares: no float32 lies between 10**k and these


def format_float32(x: float) -> str:
    """Go's `strconv.FormatFloat(x, 'e', -1, 32)`, `x` rounded to float32 first; OverflowError beyond its range."""
    special = _special(x)
    if special is not None:
        return special
    packed = _F32.pack(x)  # rounds to float32 (a Float32 reading is a float32, whatever Python held)
    cached = _F32_TEXT.get(packed)
    if cached is not None:
        return cached
    x = _F32.unpack(packed)[0]
    if x == 0:
        return "-0e+00" if packed[3] else "0e+00"
    # Python has no float32 shortest repr: find the fewest significant digits p whose correctly rounded decimal,
    # round(x, p - 1 - e10), reads back as this float32. Round-tripping is monotone in p and 9 always works.
    # Probe 7 first: a decimal-looking value ("21.3") shows its digits there once the zeros are stripped, and
    # other values need 8 or 9, so most values cost two or three probes. Checked against an exact
    # (fractions-based) shortest/closest/half-even reference, which is what Go computes.
    ax = abs(x)
    e10 = math.floor(math.log10(ax))
    if ax < _POW10[e10]:
        e10 -= 1
    elif ax >= _POW10[e10 + 1]:
        e10 += 1
    unpack, pack = _F32.unpack, _F32.pack
    if unpack(pack(round(x, 6 - e10)))[0] == x:
        mantissa = f"{x:.6e}".partition("e")[0].rstrip("0")
        p = len(mantissa.lstrip("-").replace(".", ""))
        if p > 1 and unpack(pack(round(x, p - 2 - e10)))[0] == x:
            lo, hi = 1, p - 1
            while lo < hi:
                mid = (lo + hi) // 2
                if unpack(pack(round(x, mid - 1 - e10)))[0] == x:
                    hi = mid
                else:
                    lo = mid + 1
            p = lo
    else:
        p = 8 if unpack(pack(round(x, 7 - e10)))[0] == x else 9
    text = f"{x:.{p - 1}e}"
    bits = int.from_bytes(packed, "little")
    if p > 1 and bits & 0x7FFFFF == 0 and (bits >> 23) & 0xFF > 1:
        text = _shorter_at_power_of_two(x, p) or text
    if len(_F32_TEXT) >= _F32_TEXT_MAX:
        _F32_TEXT.clear()
    _F32_TEXT[packed] = text
    return text


def _shorter_at_power_of_two(x: float, digits: int) -> str | None:
    # Below a power of two the float32 spacing halves, so the round-trip interval is lopsided: with one digit
    # fewer, the nearest decimal may fall on the narrow side while its neighbour on the wide side still reads
    # back as x. Go's shortest formatting finds that neighbour; so do we.
    nearest = f"{x:.{digits - 2}e}"
    mantissa, _, exp = nearest.partition("e")
    units = int(mantissa.replace(".", ""))
    units += (1 if units > 0 else -1) * (1 if abs(float(nearest)) < abs(x) else -1)
    candidate = float(f"{units}e{int(exp) - (digits - 2)}")
    if candidate == 0 or _F32.unpack(_F32.pack(candidate))[0] != x:
        return None
    mantissa, _, exp = f"{candidate:.{digits - 2}e}".partition("e")
    if "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{exp}"


def format_float(value: float, bits: int = 64) -> str:
    """Go's `strconv.FormatFloat(value, 'e', -1, bits)` for bits 32 or 64."""
    return format_float32(value) if bits == 32 else format_float64(value)


_GO_JSON_ESCAPES = str.maketrans(
    {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
)


def _go_json(value: Any) -> str:
    # Go's json.Marshal: compact, non-ASCII kept, HTML characters escaped.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).translate(_GO_JSON_ESCAPES)


def _bad_reading(value: Any, value_type: ValueType, why: str) -> ServerError:
    return ServerError(f"cannot format {value!r} as a {value_type.value} reading: {why}")


def _int_text(value: Any, value_type: ValueType) -> str:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise _bad_reading(value, value_type, "expected an integer")
    lo, hi = INT_RANGES[value_type]
    if not lo <= value <= hi:
        raise _bad_reading(value, value_type, f"out of range {lo}..{hi}")
    return str(value)


def _float_text(value: Any, value_type: ValueType) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _bad_reading(value, value_type, "expected a number")
    if value_type is ValueType.FLOAT32:
        try:
            return format_float32(float(value))
        except OverflowError:
            raise _bad_reading(value, value_type, "beyond float32 range") from None
    return format_float64(float(value))


def _bool_text(value: Any, value_type: ValueType) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value in (0, 1):
        return "true" if value else "false"
    raise _bad_reading(value, value_type, "expected a bool")


def _scalar_text(value: Any, value_type: ValueType) -> str:
    if value_type in INT_RANGES:
        return _int_text(value, value_type)
    if value_type in FLOAT_TYPES:
        return _float_text(value, value_type)
    if value_type is ValueType.BOOL:
        return _bool_text(value, value_type)
    if value_type is ValueType.STRING:
        if not isinstance(value, str):
            raise _bad_reading(value, value_type, "expected a str")
        return value
    if value_type is ValueType.BINARY:
        if not isinstance(value, bytes | bytearray | memoryview):
            raise _bad_reading(value, value_type, "expected bytes")
        return base64.b64encode(bytes(value)).decode("ascii")
    return _go_json(value)  # Object


def format_value(value: Any, value_type: ValueType) -> str:
    """The EdgeX reading text for a raw driver value (see the module doc).

    Binary (base64) and Object (JSON) have a text form here for logs and mappings only: their readings carry the
    value in `binaryValue` / `objectValue`. Raises ServerError (a driver returned a value of the wrong kind).
    """
    element = ARRAY_ELEMENT.get(value_type)
    if element is None:
        return _scalar_text(value, value_type)
    if not isinstance(value, list | tuple):
        raise _bad_reading(value, value_type, "expected a list")
    if element is ValueType.STRING:
        if not all(isinstance(v, str) for v in value):
            raise _bad_reading(value, value_type, "expected a list of str")
        return _go_json(list(value))
    if element is ValueType.OBJECT:
        return _go_json(list(value))
    try:
        return "[" + ", ".join([_scalar_text(v, element) for v in value]) + "]"
    except ServerError as err:
        raise _bad_reading(value, value_type, err.message) from None


# ------------------------------------------------------------------------------------------------------ parsing

_BOOL_TEXT: Final[Mapping[str, bool]] = {  # Go's strconv.ParseBool, exactly
    **dict.fromkeys(("1", "t", "T", "TRUE", "true", "True"), True),
    **dict.fromkeys(("0", "f", "F", "FALSE", "false", "False"), False),
}
_INT_TEXT = re.compile(r"[+-]?[0-9]+")
_FLOAT_SPECIAL = re.compile(r"[+-]?(inf|infinity|nan)", re.IGNORECASE)


def _bad(value_type: ValueType, text: Any, why: str) -> ContractInvalid:
    shown = text if isinstance(text, str) else json.dumps(text) if _is_json(text) else repr(text)
    return ContractInvalid(f"invalid {value_type.value} value {shown!r}: {why}")


def _is_json(value: Any) -> bool:
    return value is None or isinstance(value, bool | int | float | str | list | dict)


def _go_text(value: Any) -> str:
    """What Go's fmt.Sprint makes of a decoded JSON scalar (JSON numbers are float64 in Go)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    return str(value)


def parse_bool(text: Any) -> bool | None:
    """Go's `strconv.ParseBool`: True for "1", "t", "T", "TRUE", "true", "True", False for "0", "f", "F", "FALSE",
    "false", "False", None for anything else (no blanks, no other casing). A bool is itself."""
    if text is True or text is False:
        return text
    return _BOOL_TEXT.get(text) if isinstance(text, str) else None


_FLAG_WORDS: Final = frozenset({"true", "false"})


def parse_flag(text: str | None) -> bool | None:
    """A true/false switch such as the query parameters `numeric` and `ds-pushevent`: the word true or false in
    any letter case, surrounding blanks ignored (EdgeX takes only those words there, not Go's 1/t/0/f);
    None when absent, empty or spelled otherwise, for the caller to refuse or default."""
    if text is None:
        return None
    word = text.strip().lower()
    return parse_bool(word) if word in _FLAG_WORDS else None


def _parse_bool(value: Any) -> bool:
    found = parse_bool(_go_text(value).strip()) if isinstance(value, bool | int | float | str) else None
    if found is None:
        raise _bad(ValueType.BOOL, value, "expected true/false (or 1/0, t/f)")
    return found


def _parse_int(value: Any, value_type: ValueType) -> int:
    lo, hi = INT_RANGES[value_type]
    if isinstance(value, bool):
        raise _bad(value_type, value, "expected an integer, not a bool")
    if isinstance(value, int):
        number = value
    elif isinstance(value, float):
        if not value.is_integer():
            raise _bad(value_type, value, "expected an integer")
        number = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if not _INT_TEXT.fullmatch(text):
            raise _bad(value_type, value, "expected a base-10 integer")
        number = int(text)
    else:
        raise _bad(value_type, value, "expected an integer")
    if not lo <= number <= hi:
        raise _bad(value_type, value, f"out of range {lo}..{hi}")
    return number


def _parse_float_text(text: str, value_type: ValueType) -> float:
    s = text.strip()
    if "_" in s:  # Python's float() accepts digit separators, Go's ParseFloat (base 10) does not
        raise _bad(value_type, text, "expected a number")
    try:
        if s.lstrip("+-")[:2].lower() == "0x":  # Go's ParseFloat takes hex floats ("0x1p-2")
            return float.fromhex(s)
        number = float(s)
    except ValueError:
        legacy = _legacy_base64_float(s, value_type)
        if legacy is None:
            raise _bad(value_type, text, "expected a number") from None
        return legacy
    if math.isinf(number) and not _FLOAT_SPECIAL.fullmatch(s):
        raise _bad(value_type, text, "out of Float64 range")
    return number


def _legacy_base64_float(text: str, value_type: ValueType) -> float | None:
    # EdgeX 2.x and earlier could carry floats as base64 of their big-endian bytes; device-sdk-go still accepts it.
    size = 4 if value_type is ValueType.FLOAT32 else 8
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != size:
        return None
    number: float = struct.unpack(">f" if size == 4 else ">d", raw)[0]
    return None if math.isnan(number) else number


def _parse_float(value: Any, value_type: ValueType) -> float:
    if isinstance(value, bool):
        raise _bad(value_type, value, "expected a number, not a bool")
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        number = _parse_float_text(value, value_type)
    else:
        raise _bad(value_type, value, "expected a number")
    if value_type is ValueType.FLOAT32:
        try:
            return to_float32(number)
        except OverflowError:
            raise _bad(value_type, value, f"out of Float32 range (±{FLOAT32_MAX:.8g})") from None
    return number


def _parse_scalar(value: Any, value_type: ValueType) -> Any:
    if value_type in INT_RANGES:
        return _parse_int(value, value_type)
    if value_type in FLOAT_TYPES:
        return _parse_float(value, value_type)
    if value_type is ValueType.BOOL:
        return _parse_bool(value)
    if value_type is ValueType.STRING:
        if isinstance(value, str):
            return value
        return _go_json(value) if isinstance(value, list | dict) else _go_text(value)
    if value_type is ValueType.BINARY:
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                raise _bad(value_type, value, "expected base64") from None
        raise _bad(value_type, value, "expected base64 text")
    return value  # Object: the JSON value as given


def _split_array(value: Any, value_type: ValueType) -> Sequence[Any]:
    if isinstance(value, list | tuple):
        return value
    if not isinstance(value, str):
        raise _bad(value_type, value, "expected an array like [1, 2]")
    text = value.strip()
    if text.startswith("["):
        if not text.endswith("]"):
            raise _bad(value_type, value, "unterminated array")
        text = text[1:-1]
    if not text.strip():
        return []
    return [part.strip() for part in text.split(",")]


def _parse_array(value: Any, value_type: ValueType, element: ValueType) -> list[Any]:
    if element in (ValueType.STRING, ValueType.OBJECT):
        items = value
        if isinstance(value, str):
            try:
                items = json.loads(value)
            except json.JSONDecodeError:
                raise _bad(value_type, value, "expected a JSON array") from None
        if not isinstance(items, list):
            raise _bad(value_type, value, "expected a JSON array")
        if element is ValueType.STRING and not all(isinstance(v, str) for v in items):
            raise _bad(value_type, value, "expected an array of strings")
        return items
    out = []
    for i, item in enumerate(_split_array(value, value_type)):
        try:
            out.append(_parse_scalar(item, element))
        except ContractInvalid as err:
            raise _bad(value_type, value, f"element {i}: {err.message}") from None
    return out


def parse_value(value: Any, value_type: ValueType) -> Any:
    """A write command's value (EdgeX text such as "123", "true", "1.5e+00", "[1,2]", or a JSON value) as a raw
    Python value of `value_type`, range-checked. Raises ContractInvalid naming the type and the bad input."""
    if value is None:
        raise ContractInvalid(f"missing {value_type.value} value")
    if value_type is not ValueType.STRING and isinstance(value, str) and not value.strip():
        raise ContractInvalid(f"empty string is invalid for {value_type.value} value type")
    element = ARRAY_ELEMENT.get(value_type)
    if element is not None:
        return _parse_array(value, value_type, element)
    return _parse_scalar(value, value_type)


__all__ = [
    "ARRAY_ELEMENT",
    "FLOAT32_MAX",
    "FLOAT_TYPES",
    "INTEGER_TYPES",
    "INT_RANGES",
    "NUMERIC_TYPES",
    "UNSIGNED_TYPES",
    "format_float",
    "format_float32",
    "format_float64",
    "format_value",
    "parse_bool",
    "parse_flag",
    "parse_value",
    "to_float32",
]
