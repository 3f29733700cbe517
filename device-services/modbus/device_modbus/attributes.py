"""Modbus resource attributes and device protocol properties, validated the way device-modbus-go reads them.

Resource attributes (device profile `attributes`; keys matched case-insensitively, values may be strings as EdgeX
sends them):

- primaryTable: COILS, DISCRETE_INPUTS (EdgeX's old spelling DISCRETES_INPUT too), INPUT_REGISTERS,
  HOLDING_REGISTERS — any casing.
- startingAddress: the 0-based PDU address (EdgeX v2+; 40001-style numbers are not translated), as a number or
  numeric string ("0x10" hex too). `R.B` addresses bit B (0-15, bit 0 = least significant) of register R, for a
  Bool resource in INPUT_REGISTERS/HOLDING_REGISTERS. device-modbus-go has no bit addressing: it truncates
  10.10 to register 10 (and then reads bit 8, the low bit of the register's first byte). Our rule:
    * a string is taken literally: "10.1" is bit 1, "10.10" bit 10, "10.01" bit 1;
    * a YAML/JSON number has lost its trailing zeros, so the EdgeX sample's `10.10` arrives as 10.1. A bare
      number's fraction is read from its shortest decimal form, except that a lone ".1" (which could have been
      ".1" or ".10") is read as bit 10, as the sample spells it; quote the address ("10.1") to mean bit 1.
      A whole-number float (10.0) is register 10 without a bit.
- rawType: the type stored in the registers when it differs from the resource's valueType (EdgeX supports
  Int16/Uint16, and Int32 since 4.0); we take any of Int16/Uint16/Int32/Uint32/Int64/Uint64/Float32/Float64.
- isByteSwap / isWordSwap: see codec.py (EdgeX applies them to 32-bit types only; we also do 16/64-bit types
  and byte-swapped strings — device-modbus-go issues #335 and #665).
- stringRegisterSize: registers of a String resource (2 characters each), required for String, 1-123.
- arrayLength (our extension; EdgeX's Modbus service has no arrays): elements of a *Array resource.

EdgeX has no `writeFunctionCode` attribute: it writes coils with FC15 and registers with FC06 (one) or FC16.

Protocol properties (one of these protocol names in the device's `protocols`; property keys case-insensitive,
values strings or numbers):

- `modbus-tcp` (EdgeX): Address (host), Port (502), UnitID (1), Timeout (5 s), IdleTimeout (5 s).
- `modbus-rtu` (EdgeX): Address (serial port; EdgeX's "/dev/ttyUSB0,..." form keeps the part before the first
  comma), BaudRate (19200), DataBits (8), StopBits (1), Parity N/E/O (N), UnitID, Timeout, IdleTimeout.
- `modbus-rtu-over-tcp` (ours; EdgeX has none): RTU frames (with CRC) through a TCP serial server — the TCP
  properties. `modbus-ascii`: ASCII framing on a serial line — the RTU properties.
  Timeouts are seconds (a number, numeric text, or a Go duration such as "500ms"); IdleTimeout 0 keeps an idle
  connection open. Defaults are those of EdgeX's sample devices; EdgeX itself requires every property.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from enum import StrEnum
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator, model_validator

from edgeplane_common.durations import parse_duration
from edgeplane_common.edgex.values import parse_bool
from edgeplane_common.errors import ContractInvalid
from edgeplane_common.models import ValueType

MAX_BIT: Final = 15


class PrimaryTable(StrEnum):
    COILS = "COILS"
    DISCRETE_INPUTS = "DISCRETE_INPUTS"
    INPUT_REGISTERS = "INPUT_REGISTERS"
    HOLDING_REGISTERS = "HOLDING_REGISTERS"

    @property
    def is_bits(self) -> bool:
        """Coils and discrete inputs hold single bits; the other tables 16-bit registers."""
        return self in (PrimaryTable.COILS, PrimaryTable.DISCRETE_INPUTS)

    @property
    def writable(self) -> bool:
        return self in (PrimaryTable.COILS, PrimaryTable.HOLDING_REGISTERS)


_TABLE_ALIASES: Final = {t.value: t for t in PrimaryTable} | {"DISCRETES_INPUT": PrimaryTable.DISCRETE_INPUTS}

RAW_TYPES: Final = (
    ValueType.INT16,
    ValueType.UINT16,
    ValueType.INT32,
    ValueType.UINT32,
    ValueType.INT64,
    ValueType.UINT64,
    ValueType.FLOAT32,
    ValueType.FLOAT64,
)
_RAW_TYPES_BY_NAME: Final = {t.value.lower(): t for t in RAW_TYPES}

_ADDRESS_TEXT: Final = re.compile(r"(\d+)(?:\.(\d{1,2}))?")


def _fold(key: str) -> str:
    return key.replace("_", "").replace("-", "").lower()


def _fold_keys(data: Any, names: Mapping[str, str]) -> Any:
    if not isinstance(data, Mapping):
        return data
    out: dict[str, Any] = {}
    for key, value in data.items():
        field = names.get(_fold(key)) if isinstance(key, str) else None
        if field is not None:
            out[field] = value
    return out


def parse_flag(value: Any) -> bool:
    """A boolean attribute as EdgeX casts it: a bool, 0/1, or ParseBool text ("true", "T", "0", ...; any case)."""
    if isinstance(value, bool):
        return value
    # Any letter case: lowered, Go's spellings are exactly 1/t/true and 0/f/false.
    found = parse_bool(str(value).strip().lower()) if isinstance(value, int | str) else None
    if found is None:
        raise ValueError(f"expected true or false, got {value!r}")
    return found


def _parse_uint(value: Any, what: str, hi: int) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text, 16) if text.lower().startswith("0x") else int(text, 10)
        except ValueError:
            raise ValueError(f"{what} must be an integer, got {text!r}") from None
    if not isinstance(value, int):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    if not 0 <= value <= hi:
        raise ValueError(f"{what} {value} is out of range 0..{hi}")
    return value


def parse_starting_address(value: Any) -> tuple[int, int | None]:
    """(register or coil address, bit or None) from a startingAddress attribute (rules in the module doc)."""
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"startingAddress must be a non-negative address, got {value!r}")
        if value.is_integer():
            return _parse_uint(value, "startingAddress", 0xFFFF), None
        register, _, fraction = repr(value).partition(".")
        if not fraction.isdigit() or len(fraction) > 2:
            raise ValueError(f"startingAddress {value!r}: write a bit address as register.bit, bit 0-{MAX_BIT}")
        bit = 10 if fraction == "1" else int(fraction)  # YAML turned "10.10" into 10.1
        return _parse_uint(register, "startingAddress", 0xFFFF), _check_bit(bit, value)
    if isinstance(value, str):
        text = value.strip()
        m = _ADDRESS_TEXT.fullmatch(text)
        if m is not None and m.group(2) is not None:
            return _parse_uint(m.group(1), "startingAddress", 0xFFFF), _check_bit(int(m.group(2)), value)
    return _parse_uint(value, "startingAddress", 0xFFFF), None


def _check_bit(bit: int, written: Any) -> int:
    if bit > MAX_BIT:
        raise ValueError(f"startingAddress {written!r}: bit {bit} is out of range 0..{MAX_BIT}")
    return bit


def _messages(err: ValidationError, display: Mapping[str, str]) -> str:
    parts = []
    for e in err.errors(include_url=False):
        loc = ".".join(display.get(str(p), str(p)) for p in e["loc"])
        msg = e["msg"].removeprefix("Value error, ")
        parts.append(f"{loc}: {msg}" if loc and not msg.startswith(loc) else msg)
    return "; ".join(parts)


# ------------------------------------------------------------------------------------------------- attributes

_ATTRIBUTE_NAMES: Final = {
    "primarytable": "primary_table",
    "startingaddress": "starting_address",
    "rawtype": "raw_type",
    "isbyteswap": "is_byte_swap",
    "iswordswap": "is_word_swap",
    "stringregistersize": "string_register_size",
    "arraylength": "array_length",
}
_ATTRIBUTE_DISPLAY: Final = {
    "primary_table": "primaryTable",
    "starting_address": "startingAddress",
    "bit": "startingAddress",
    "raw_type": "rawType",
    "is_byte_swap": "isByteSwap",
    "is_word_swap": "isWordSwap",
    "string_register_size": "stringRegisterSize",
    "array_length": "arrayLength",
}


class ModbusAttributes(BaseModel):
    """One resource's Modbus attributes (immutable and hashable: codecs are cached per attributes)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    primary_table: PrimaryTable
    starting_address: int = Field(ge=0, le=0xFFFF)
    bit: int | None = Field(default=None, ge=0, le=MAX_BIT)
    raw_type: ValueType | None = None
    is_byte_swap: bool = False
    is_word_swap: bool = False
    string_register_size: int | None = Field(default=None, ge=1, le=123)
    array_length: int | None = Field(default=None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _edgex_keys(cls, data: Any) -> Any:
        if isinstance(data, ModbusAttributes):
            return data
        data = _fold_keys(data, _ATTRIBUTE_NAMES)
        if isinstance(data, dict) and "starting_address" in data:
            data["starting_address"], data["bit"] = parse_starting_address(data["starting_address"])
        return data

    @field_validator("primary_table", mode="before")
    @classmethod
    def _table(cls, v: Any) -> Any:
        if isinstance(v, str):
            found = _TABLE_ALIASES.get(v.strip().upper().replace("-", "_").replace(" ", "_"))
            if found is None:
                allowed = ", ".join(t.value for t in PrimaryTable)
                raise ValueError(f"unknown primaryTable {v!r}; expected one of {allowed}")
            return found
        return v

    @field_validator("raw_type", mode="before")
    @classmethod
    def _raw_type(cls, v: Any) -> Any:
        if v is None or (isinstance(v, str) and not v.strip()):
            return None
        found = _RAW_TYPES_BY_NAME.get(str(v).strip().lower())
        if found is None:
            allowed = ", ".join(t.value for t in RAW_TYPES)
            raise ValueError(f"unsupported rawType {v!r}; expected one of {allowed}")
        return found

    @field_validator("is_byte_swap", "is_word_swap", mode="before")
    @classmethod
    def _flag(cls, v: Any) -> bool:
        return parse_flag(v)

    @field_validator("string_register_size", "array_length", mode="before")
    @classmethod
    def _count(cls, v: Any, info: ValidationInfo) -> Any:
        return None if v is None else _parse_uint(v, _ATTRIBUTE_DISPLAY[str(info.field_name)], 1 << 20)

    @model_validator(mode="after")
    def _bit_needs_registers(self) -> ModbusAttributes:
        if self.bit is not None and self.primary_table.is_bits:
            raise ValueError(f"a bit address (register.bit) needs a register table, not {self.primary_table.value}")
        return self


def parse_attributes(attributes: Mapping[str, Any] | None, *, resource: str | None = None) -> ModbusAttributes:
    """Validated attributes of one resource; ContractInvalid names the resource and the attribute."""
    where = f"resource {resource}: " if resource else ""
    if not attributes:
        raise ContractInvalid(f"{where}Modbus attributes primaryTable and startingAddress are required")
    try:
        return ModbusAttributes.model_validate(attributes)
    except ValidationError as err:
        raise ContractInvalid(f"{where}invalid Modbus attributes: {_messages(err, _ATTRIBUTE_DISPLAY)}") from None


# ------------------------------------------------------------------------------------------ protocol properties


class ModbusProtocol(StrEnum):
    TCP = "modbus-tcp"
    RTU = "modbus-rtu"
    RTU_OVER_TCP = "modbus-rtu-over-tcp"
    ASCII = "modbus-ascii"


_PROPERTY_NAMES: Final = {
    "address": "address",
    "port": "port",
    "unitid": "unit_id",
    "timeout": "timeout",
    "idletimeout": "idle_timeout",
    "baudrate": "baud_rate",
    "databits": "data_bits",
    "stopbits": "stop_bits",
    "parity": "parity",
}
_PROPERTY_DISPLAY: Final = {
    "address": "Address",
    "port": "Port",
    "unit_id": "UnitID",
    "timeout": "Timeout",
    "idle_timeout": "IdleTimeout",
    "baud_rate": "BaudRate",
    "data_bits": "DataBits",
    "stop_bits": "StopBits",
    "parity": "Parity",
}
_PARITY: Final = {"N": "N", "NONE": "N", "E": "E", "EVEN": "E", "O": "O", "ODD": "O"}


def _seconds(v: Any, what: str) -> float:
    if isinstance(v, bool):
        raise ValueError(f"{what} must be seconds, got {v!r}")
    if isinstance(v, str):
        text = v.strip()
        try:
            v = float(text)
        except ValueError:
            v = parse_duration(text)
    if not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{what} must be a non-negative number of seconds, got {v!r}")
    return float(v)


class _Connection(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    address: str = Field(min_length=1)
    unit_id: int = 1
    timeout: float = Field(default=5.0, gt=0)
    idle_timeout: float = 5.0

    @model_validator(mode="before")
    @classmethod
    def _edgex_keys(cls, data: Any) -> Any:
        if not isinstance(data, Mapping):
            return data
        folded = _fold_keys(data, _PROPERTY_NAMES)
        # Properties of the other transport (a Port on a serial device) are ignored, as EdgeX does.
        out = {k: v for k, v in folded.items() if k in cls.model_fields}
        if "protocol" in data:
            out["protocol"] = data["protocol"]
        return out

    @field_validator("address", mode="before")
    @classmethod
    def _address(cls, v: Any) -> Any:
        return v.strip() if isinstance(v, str) else v

    @field_validator("unit_id", mode="before")
    @classmethod
    def _unit(cls, v: Any) -> int:
        return _parse_uint(v, "UnitID", 255)

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> float:
        return _seconds(v, "Timeout")

    @field_validator("idle_timeout", mode="before")
    @classmethod
    def _idle(cls, v: Any) -> float:
        return _seconds(v, "IdleTimeout")


class TcpConnection(_Connection):
    """modbus-tcp (MBAP framing) or modbus-rtu-over-tcp (RTU frames through a TCP serial server)."""

    protocol: Literal[ModbusProtocol.TCP, ModbusProtocol.RTU_OVER_TCP] = ModbusProtocol.TCP
    port: int = 502

    @field_validator("port", mode="before")
    @classmethod
    def _port(cls, v: Any) -> int:
        port = _parse_uint(v, "Port", 0xFFFF)
        if port == 0:
            raise ValueError("Port 0 is not a usable TCP port")
        return port

    @property
    def framer(self) -> Literal["socket", "rtu"]:
        """pymodbus FramerType value for this connection."""
        return "rtu" if self.protocol is ModbusProtocol.RTU_OVER_TCP else "socket"

    @property
    def link(self) -> tuple[str, ...]:
        """Identity of the physical link: devices with the same link share one connection and one lock."""
        return ("tcp", self.address.lower(), str(self.port), self.framer)


class SerialConnection(_Connection):
    """modbus-rtu or modbus-ascii on a serial line."""

    protocol: Literal[ModbusProtocol.RTU, ModbusProtocol.ASCII] = ModbusProtocol.RTU
    baud_rate: int = Field(default=19200, gt=0)
    data_bits: int = Field(default=8, ge=5, le=8)
    stop_bits: float = 1.0
    parity: Literal["N", "E", "O"] = "N"

    @field_validator("address", mode="after")
    @classmethod
    def _port_path(cls, v: str) -> str:
        path = v.split(",", 1)[0].strip()  # EdgeX also accepted "/dev/ttyUSB0,19200,8,1,N"
        if not path:
            raise ValueError("Address must name the serial port")
        return path

    @field_validator("baud_rate", "data_bits", mode="before")
    @classmethod
    def _int(cls, v: Any, info: ValidationInfo) -> int:
        return _parse_uint(v, _PROPERTY_DISPLAY[str(info.field_name)], 1 << 24)

    @field_validator("stop_bits", mode="before")
    @classmethod
    def _stop_bits(cls, v: Any) -> float:
        try:
            bits = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"StopBits must be 1, 1.5 or 2, got {v!r}") from None
        if bits not in (1, 1.5, 2):
            raise ValueError(f"StopBits must be 1, 1.5 or 2, got {v!r}")
        return bits

    @field_validator("parity", mode="before")
    @classmethod
    def _parity(cls, v: Any) -> str:
        found = _PARITY.get(str(v).strip().upper())
        if found is None:
            raise ValueError(f"Parity must be N (none), E (even) or O (odd), got {v!r}")
        return found

    @property
    def framer(self) -> Literal["rtu", "ascii"]:
        return "ascii" if self.protocol is ModbusProtocol.ASCII else "rtu"

    @property
    def link(self) -> tuple[str, ...]:
        return ("serial", self.address)


ModbusConnection = TcpConnection | SerialConnection

_CONNECTIONS: Final[dict[ModbusProtocol, Callable[[dict[str, Any]], ModbusConnection]]] = {
    ModbusProtocol.TCP: lambda p: TcpConnection.model_validate({**p, "protocol": ModbusProtocol.TCP}),
    ModbusProtocol.RTU_OVER_TCP: lambda p: TcpConnection.model_validate({**p, "protocol": ModbusProtocol.RTU_OVER_TCP}),
    ModbusProtocol.RTU: lambda p: SerialConnection.model_validate({**p, "protocol": ModbusProtocol.RTU}),
    ModbusProtocol.ASCII: lambda p: SerialConnection.model_validate({**p, "protocol": ModbusProtocol.ASCII}),
}


def parse_protocols(
    protocols: Mapping[str, Mapping[str, Any]] | None, *, device: str | None = None
) -> ModbusConnection:
    """The connection described by a device's `protocols` (exactly one Modbus protocol; others are ignored).

    ContractInvalid names the device, the protocol and the property."""
    where = f"device {device}: " if device else ""
    names = {p.value: p for p in ModbusProtocol}
    found = [(names[k.strip().lower()], v) for k, v in (protocols or {}).items() if k.strip().lower() in names]
    if not found:
        raise ContractInvalid(f"{where}no Modbus protocol; expected one of {', '.join(names)} in protocols")
    if len(found) > 1:
        listed = ", ".join(p.value for p, _ in found)
        raise ContractInvalid(f"{where}several Modbus protocols ({listed}); a device uses exactly one")
    protocol, properties = found[0]
    if not isinstance(properties, Mapping):
        raise ContractInvalid(f"{where}{protocol.value} properties must be an object")
    try:
        return _CONNECTIONS[protocol]({k: v for k, v in properties.items() if _fold(str(k)) != "protocol"})
    except ValidationError as err:
        raise ContractInvalid(
            f"{where}invalid {protocol.value} properties: {_messages(err, _PROPERTY_DISPLAY)}"
        ) from None


__all__ = [
    "RAW_TYPES",
    "ModbusAttributes",
    "ModbusConnection",
    "ModbusProtocol",
    "PrimaryTable",
    "SerialConnection",
    "TcpConnection",
    "parse_attributes",
    "parse_flag",
    "parse_protocols",
    "parse_starting_address",
]
