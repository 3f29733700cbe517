"""EdgeX enumerations with the input normalisation EdgeX applies (valueType case-insensitive etc.)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any

from pydantic import BeforeValidator


class ValueType(StrEnum):
    BOOL = "Bool"
    STRING = "String"
    UINT8 = "Uint8"
    UINT16 = "Uint16"
    UINT32 = "Uint32"
    UINT64 = "Uint64"
    INT8 = "Int8"
    INT16 = "Int16"
    INT32 = "Int32"
    INT64 = "Int64"
    FLOAT32 = "Float32"
    FLOAT64 = "Float64"
    BINARY = "Binary"
    OBJECT = "Object"
    BOOL_ARRAY = "BoolArray"
    STRING_ARRAY = "StringArray"
    UINT8_ARRAY = "Uint8Array"
    UINT16_ARRAY = "Uint16Array"
    UINT32_ARRAY = "Uint32Array"
    UINT64_ARRAY = "Uint64Array"
    INT8_ARRAY = "Int8Array"
    INT16_ARRAY = "Int16Array"
    INT32_ARRAY = "Int32Array"
    INT64_ARRAY = "Int64Array"
    FLOAT32_ARRAY = "Float32Array"
    FLOAT64_ARRAY = "Float64Array"
    OBJECT_ARRAY = "ObjectArray"

    @property
    def is_array(self) -> bool:
        return self.value.endswith("Array")

    @property
    def is_numeric(self) -> bool:
        return self.value.startswith(("Int", "Uint", "Float")) and not self.is_array


_VALUE_TYPES = {v.value.lower(): v for v in ValueType}


def normalize_value_type(value: Any) -> ValueType:
    """EdgeX accepts any casing ("FLOAT32", "float32") and stores the canonical name."""
    if isinstance(value, ValueType):
        return value
    if isinstance(value, str):
        found = _VALUE_TYPES.get(value.strip().lower())
        if found is not None:
            return found
    allowed = ", ".join(v.value for v in ValueType)
    raise ValueError(f"unknown valueType {value!r}; expected one of {allowed}")


class ReadWrite(StrEnum):
    R = "R"
    W = "W"
    RW = "RW"
    WR = "WR"

    @property
    def readable(self) -> bool:
        return "R" in self.value

    @property
    def writable(self) -> bool:
        return "W" in self.value


class AdminState(StrEnum):
    LOCKED = "LOCKED"
    UNLOCKED = "UNLOCKED"


class OperatingState(StrEnum):
    UP = "UP"
    DOWN = "DOWN"
    UNKNOWN = "UNKNOWN"


def _upper(value: Any) -> Any:
    return value.strip().upper() if isinstance(value, str) else value


ValueTypeField = Annotated[ValueType, BeforeValidator(normalize_value_type)]
ReadWriteField = Annotated[ReadWrite, BeforeValidator(_upper)]
AdminStateField = Annotated[AdminState, BeforeValidator(_upper)]
OperatingStateField = Annotated[OperatingState, BeforeValidator(_upper)]
