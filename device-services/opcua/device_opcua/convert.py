"""OPC UA values <-> EdgeX raw values, by the node's own data type.

Reads: a Variant's Python value becomes the raw value of the resource's EdgeX value type (the SDK formats it).
DateTime reads as RFC 3339 text into a String resource and as Unix nanoseconds (EdgeX's unit for times) into
an Int64/Uint64 one; ByteString into Binary (or base64 text into String); LocalizedText, QualifiedName, NodeId
and GUID as their text. Writes: the raw value the SDK parsed is converted to the node's Variant type (ranges
checked), so a write never changes a node's data type on the server.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import math
import uuid
from enum import Enum
from typing import Any

from asyncua import ua

from edgeplane_common.errors import ContractInvalid, ServerError
from edgeplane_common.models import ValueType

VT = ua.VariantType
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)

INT_RANGES: dict[ua.VariantType, tuple[int, int]] = {
    VT.SByte: (-(2**7), 2**7 - 1),
    VT.Byte: (0, 2**8 - 1),
    VT.Int16: (-(2**15), 2**15 - 1),
    VT.UInt16: (0, 2**16 - 1),
    VT.Int32: (-(2**31), 2**31 - 1),
    VT.UInt32: (0, 2**32 - 1),
    VT.Int64: (-(2**63), 2**63 - 1),
    VT.UInt64: (0, 2**64 - 1),
}
_FLOAT32_MAX = 3.4028234663852886e38

EDGEX_TYPE_OF: dict[ua.VariantType, ValueType] = {
    VT.Boolean: ValueType.BOOL,
    VT.SByte: ValueType.INT8,
    VT.Byte: ValueType.UINT8,
    VT.Int16: ValueType.INT16,
    VT.UInt16: ValueType.UINT16,
    VT.Int32: ValueType.INT32,
    VT.UInt32: ValueType.UINT32,
    VT.Int64: ValueType.INT64,
    VT.UInt64: ValueType.UINT64,
    VT.Float: ValueType.FLOAT32,
    VT.Double: ValueType.FLOAT64,
    VT.String: ValueType.STRING,
    VT.DateTime: ValueType.STRING,
    VT.Guid: ValueType.STRING,
    VT.ByteString: ValueType.BINARY,
    VT.XmlElement: ValueType.STRING,
    VT.NodeId: ValueType.STRING,
    VT.ExpandedNodeId: ValueType.STRING,
    VT.StatusCode: ValueType.UINT32,
    VT.QualifiedName: ValueType.STRING,
    VT.LocalizedText: ValueType.STRING,
}
_ARRAY_OF = {
    ValueType.BOOL: ValueType.BOOL_ARRAY,
    ValueType.STRING: ValueType.STRING_ARRAY,
    ValueType.UINT8: ValueType.UINT8_ARRAY,
    ValueType.UINT16: ValueType.UINT16_ARRAY,
    ValueType.UINT32: ValueType.UINT32_ARRAY,
    ValueType.UINT64: ValueType.UINT64_ARRAY,
    ValueType.INT8: ValueType.INT8_ARRAY,
    ValueType.INT16: ValueType.INT16_ARRAY,
    ValueType.INT32: ValueType.INT32_ARRAY,
    ValueType.INT64: ValueType.INT64_ARRAY,
    ValueType.FLOAT32: ValueType.FLOAT32_ARRAY,
    ValueType.FLOAT64: ValueType.FLOAT64_ARRAY,
}
ELEMENT_OF = {v: k for k, v in _ARRAY_OF.items()}


def edgex_type(variant_type: ua.VariantType, is_array: bool) -> ValueType:
    """The EdgeX value type a node of this OPC UA type reads best into (discovery's choice)."""
    scalar = EDGEX_TYPE_OF.get(variant_type, ValueType.OBJECT)
    if not is_array:
        return scalar
    if scalar is ValueType.BINARY:
        return ValueType.OBJECT_ARRAY
    return _ARRAY_OF.get(scalar, ValueType.OBJECT_ARRAY)


class ValueMismatch(ServerError):
    """The node holds a value the resource's value type cannot take: the server answered, the profile is wrong
    for it, so the device stays UP."""

    device_alive = True


def datetime_ns(value: dt.datetime) -> int:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


def rfc3339(value: dt.datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return rfc3339(value)
    if isinstance(value, bytes):
        return base64.b64encode(value).decode()
    if isinstance(value, ua.LocalizedText):
        return str(value.Text or "")
    if isinstance(value, ua.QualifiedName | ua.NodeId):
        return str(value.to_string())
    if isinstance(value, ua.StatusCode):
        return str(value.name)
    return str(value)


def jsonable(value: Any) -> Any:
    """Structures (ExtensionObjects), enums and the other OPC UA types as JSON for an Object reading."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, Enum):
        return value.value if isinstance(value.value, int) else value.name
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    return _text(value)


def _scalar(value: Any, vt: ValueType, where: str) -> Any:
    if vt is ValueType.STRING:
        return _text(value)
    if vt is ValueType.BOOL:
        if isinstance(value, bool):
            return value
        if isinstance(value, int):
            return value != 0
    elif vt.is_numeric and vt in (ValueType.FLOAT32, ValueType.FLOAT64):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    elif vt.is_numeric:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dt.datetime):
            return datetime_ns(value)
        if isinstance(value, ua.StatusCode):
            return value.value
    elif vt is ValueType.BINARY:
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode()
    raise ValueMismatch(f"{where} holds {_kind(value)} {_short(value)}, which a {vt.value} resource cannot take")


def _kind(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return "a DateTime"
    if isinstance(value, bytes):
        return "a ByteString"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# Resource value types whose raw value is the OPC UA value itself when it already has this Python type.
_RAW_TYPE: dict[ValueType, type] = {
    ValueType.BOOL: bool,
    ValueType.STRING: str,
    ValueType.FLOAT32: float,
    ValueType.FLOAT64: float,
    **dict.fromkeys(
        (
            ValueType.INT8,
            ValueType.INT16,
            ValueType.INT32,
            ValueType.INT64,
            ValueType.UINT8,
            ValueType.UINT16,
            ValueType.UINT32,
            ValueType.UINT64,
        ),
        int,
    ),
}


def to_raw(value: Any, value_type: ValueType, where: str) -> Any:
    """The raw value of `value_type` for an OPC UA value read from a node (`where` names it in errors)."""
    if type(value) is _RAW_TYPE.get(value_type):
        return value  # the common case, once per value polled or pushed: what the conversions below would give
    if value_type is ValueType.OBJECT or value_type is ValueType.OBJECT_ARRAY:
        return jsonable(value)
    if value_type.is_array:
        if not isinstance(value, list):
            raise ValueMismatch(
                f"{where} holds a scalar {_short(value)}, which a {value_type.value} resource cannot take"
            )
        element = ELEMENT_OF[value_type]
        return [_scalar(v, element, where) for v in value]
    if isinstance(value, list):
        if value_type is ValueType.BINARY and all(isinstance(v, int) for v in value):
            return bytes(value)  # a Byte array read into Binary
        raise ValueMismatch(f"{where} holds an array, which a {value_type.value} resource cannot take")
    if value is None:
        raise ValueMismatch(f"{where} has no value (null)")
    return _scalar(value, value_type, where)


def _bad_write(value: Any, target: str, where: str, why: str = "") -> ContractInvalid:
    return ContractInvalid(
        f"cannot write {_short(value)} to {where} of OPC UA type {target}{': ' + why if why else ''}"
    )


def _to_element(value: Any, variant: ua.VariantType, where: str) -> Any:
    name = variant.name
    if variant is VT.Boolean:
        if isinstance(value, bool):
            return value
        raise _bad_write(value, name, where, "it takes true or false")
    if variant in INT_RANGES:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise _bad_write(value, name, where, "it takes an integer")
        lo, hi = INT_RANGES[variant]
        if not lo <= value <= hi:
            raise _bad_write(value, name, where, f"out of range {lo}..{hi}")
        return value
    if variant in (VT.Float, VT.Double):
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _bad_write(value, name, where, "it takes a number")
        value = float(value)
        if variant is VT.Float and math.isfinite(value) and abs(value) > _FLOAT32_MAX:
            raise _bad_write(value, name, where, "out of Float range")
        return value
    if variant in (VT.String, VT.XmlElement):
        return value if isinstance(value, str) else _text(value)
    if variant is VT.LocalizedText:
        return ua.LocalizedText(_text(value))
    if variant is VT.QualifiedName:
        return ua.QualifiedName.from_string(_text(value))
    if variant is VT.ByteString:
        if isinstance(value, bytes):
            return value
        if isinstance(value, str):
            return value.encode()
        raise _bad_write(value, name, where, "it takes bytes")
    if variant is VT.DateTime:
        if isinstance(value, int) and not isinstance(value, bool):
            return _EPOCH + dt.timedelta(microseconds=value // 1000)
        if isinstance(value, str):
            try:
                parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                raise _bad_write(value, name, where, "it takes RFC 3339 text or Unix nanoseconds") from None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
        raise _bad_write(value, name, where, "it takes RFC 3339 text or Unix nanoseconds")
    if variant is VT.Guid:
        try:
            return uuid.UUID(_text(value))
        except ValueError:
            raise _bad_write(value, name, where, "it takes a GUID") from None
    if variant in (VT.NodeId, VT.ExpandedNodeId):
        try:
            return ua.NodeId.from_string(_text(value))
        except Exception:
            raise _bad_write(value, name, where, "it takes NodeId text") from None
    raise _bad_write(value, name, where, "edgeplane does not write this type")


def to_variant(value: Any, variant: ua.VariantType, is_array: bool, where: str) -> ua.Variant:
    """A Variant of the node's own type (and rank) for a raw value the SDK parsed; ContractInvalid if it
    cannot be one."""
    if is_array:
        if isinstance(value, bytes) and variant is VT.Byte:
            value = list(value)
        if not isinstance(value, list):
            raise _bad_write(value, f"{variant.name} array", where, "it takes an array")
        return ua.Variant([_to_element(v, variant, where) for v in value], variant, is_array=True)
    if isinstance(value, list):
        raise _bad_write(value, variant.name, where, "it takes a single value, not an array")
    return ua.Variant(_to_element(value, variant, where), variant)
