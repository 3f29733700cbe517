"""Registers and bits ⇄ raw resource values, with `struct` (pymodbus 3.10 removed its payload helpers).

Layout rules:

- Registers are big-endian 16-bit words and a multi-register value starts with its most significant word
  (Modbus/Modicon order). isByteSwap swaps the two bytes inside every word; isWordSwap reverses the order of the
  words of each value. For 32-bit types that is device-modbus-go's `swap32BitDataBytes` (ABCD → BADC, CDAB,
  DCBA). EdgeX ignores both flags for 64-bit types (issue #335); we apply the same rule there, so isWordSwap on a
  64-bit value is the fully reversed word order GH EF CD AB (what pymodbus calls word_order="little" and what
  "little-endian word order" means on most PLCs), not a swap within each 32-bit half. A 16-bit value has one word,
  so only isByteSwap changes it (EdgeX ignores it there too). Strings take isByteSwap (issue #665), not
  isWordSwap.
- rawType is what the registers hold when the resource's valueType differs (EdgeX's sample reads an Int16
  register into a Float32 resource whose scale is 0.1). Decoding converts raw → value type (float → integer
  truncates toward zero, as Go does); encoding converts value → raw type, rounding floats half away from zero,
  because a reverse-scaled write such as 21.3 / 0.1 is 212.99999999999997 and EdgeX's truncation would write 212.
- Bool: one coil/discrete input; in a register table either bit B of the register (startingAddress "R.B") or,
  without a bit, the whole register (non-zero is true; writing puts 1 or 0). Writing one bit of a register is a
  read-modify-write: `encode` needs the register's current value (`current`) and the driver must hold the
  link's lock from that read to the write.
- String: stringRegisterSize registers, two bytes per register, high byte first, UTF-8. Reading strips NULs at
  both ends (as EdgeX) and stops at the first NUL left (stale bytes after a terminator); writing pads with NULs
  and refuses text longer than the registers (EdgeX silently truncates).
- *Array value types (our extension): arrayLength elements laid out back to back, each as its scalar would be.

For speed, `compile_codec` precomputes the `struct` formats of a resource once (and caches by attributes); a
driver decoding many resources from one coalesced read wraps the registers in a RegisterBlock so they are
packed to bytes once and each resource is a single `unpack_from`.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final

from device_modbus.attributes import ModbusAttributes, PrimaryTable, parse_attributes
from edgeplane_common.edgex.values import ARRAY_ELEMENT, FLOAT_TYPES, INT_RANGES, to_float32
from edgeplane_common.errors import ContractInvalid, ServerError
from edgeplane_common.models import ValueType

MAX_READ_REGISTERS: Final = 125
MAX_WRITE_REGISTERS: Final = 123
MAX_READ_BITS: Final = 2000
MAX_WRITE_BITS: Final = 1968

# struct code and registers per element for each numeric type that fits Modbus registers.
_LAYOUT: Final[dict[ValueType, tuple[str, int]]] = {
    ValueType.INT16: ("h", 1),
    ValueType.UINT16: ("H", 1),
    ValueType.INT32: ("i", 2),
    ValueType.UINT32: ("I", 2),
    ValueType.INT64: ("q", 4),
    ValueType.UINT64: ("Q", 4),
    ValueType.FLOAT32: ("f", 2),
    ValueType.FLOAT64: ("d", 4),
}


class RegisterBlock:
    """The registers of one read, packed to bytes lazily (once per word order) for all resources decoded from it."""

    __slots__ = ("_be", "_le", "words")

    def __init__(self, words: Sequence[int]) -> None:
        self.words = words
        self._be: bytes | None = None
        self._le: bytes | None = None

    def packed(self, little: bool) -> bytes:
        """The words as bytes, each word big-endian (Modbus) or, for byte-swapped resources, little-endian."""
        if little:
            if self._le is None:
                self._le = _pack_words(self.words, "<")
            return self._le
        if self._be is None:
            self._be = _pack_words(self.words, ">")
        return self._be


def _pack_words(words: Sequence[int], order: str) -> bytes:
    try:
        return struct.pack(f"{order}{len(words)}H", *words)
    except struct.error as err:
        raise ServerError(f"register values must be 0..65535: {err}") from None


@lru_cache(maxsize=512)
def _structs(
    code: str, elements: int, words: int, byte_swap: bool, word_swap: bool
) -> tuple[struct.Struct, struct.Struct]:
    # Packing the words little-endian swaps the bytes of each word; unpacking the value little-endian then
    # reverses all its bytes, i.e. the word order with each word's bytes restored. So: byte swap = words '<'
    # value '>'; word swap = words '<' value '<'; both = words '>' value '<'.
    words_order = "<" if byte_swap != word_swap else ">"
    value_order = "<" if word_swap else ">"
    return struct.Struct(f"{words_order}{elements * words}H"), struct.Struct(f"{value_order}{elements}{code}")


def _short(words: Sequence[Any], count: int, what: str) -> ServerError:
    return ServerError(f"{what}: got {len(words)} values, need {count}")


# ------------------------------------------------------------------------------------------- value conversions


def _round_half_away(x: float) -> int:
    # Not floor(x + 0.5): that addition itself rounds (at 2**52, or for 0.49999999999999994).
    a = abs(x)
    n = math.floor(a)
    if a - n >= 0.5:
        n += 1
    return n if x >= 0 else -n


def _decoder(raw: ValueType, vt: ValueType) -> Callable[[Any], Any] | None:
    """raw register value → value of the resource's type (None: identical)."""
    if raw is vt:
        return None
    if vt in FLOAT_TYPES:
        if vt is ValueType.FLOAT64:
            return float

        def to_f32(r: Any) -> float:
            try:
                return to_float32(float(r))
            except OverflowError:
                raise ServerError(f"raw {raw.value} {r!r} does not fit Float32") from None

        return to_f32
    lo, hi = INT_RANGES[vt]

    def to_int(r: Any) -> int:
        n = math.trunc(r) if isinstance(r, float) and math.isfinite(r) else r
        if not isinstance(n, int) or not lo <= n <= hi:
            raise ServerError(f"raw {raw.value} {r!r} does not fit {vt.value} ({lo}..{hi})")
        return n

    return to_int


def _encoder(vt: ValueType, raw: ValueType) -> Callable[[Any], Any]:
    """value of the resource's type → raw register value, checked (bad input is ContractInvalid)."""

    def bad(v: Any, why: str) -> ContractInvalid:
        shown = f"{vt.value} value {v!r}" + ("" if raw is vt else f" as rawType {raw.value}")
        return ContractInvalid(f"cannot write {shown}: {why}")

    if raw in FLOAT_TYPES:

        def to_float(v: Any) -> float:
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise bad(v, "not a number")
            try:
                return to_float32(float(v)) if raw is ValueType.FLOAT32 else float(v)
            except OverflowError:
                raise bad(v, "beyond Float32 range") from None

        return to_float
    lo, hi = INT_RANGES[raw]

    def to_int(v: Any) -> int:
        if isinstance(v, bool) or not isinstance(v, int | float):
            raise bad(v, "not a number")
        if isinstance(v, float):
            if not math.isfinite(v):
                raise bad(v, "an integer register cannot hold it")
            n = _round_half_away(v)
        else:
            n = v
        if not lo <= n <= hi:
            raise bad(v, f"out of range {lo}..{hi}")
        return n

    return to_int


# ------------------------------------------------------------------------------------------------------ codecs


class ResourceCodec:
    """How one resource maps to a table: `count` registers or bits at `address`; decode/encode its raw value."""

    __slots__ = ("address", "attributes", "count", "table", "value_type")

    def __init__(self, attributes: ModbusAttributes, value_type: ValueType, count: int) -> None:
        self.attributes = attributes
        self.table = attributes.primary_table
        self.address = attributes.starting_address
        self.value_type = value_type
        self.count = count

    @property
    def end(self) -> int:
        """One past the last register/bit used."""
        return self.address + self.count

    @property
    def needs_current(self) -> bool:
        """True when a write changes part of a register (a bit): pass the register's current value to encode()."""
        return False

    def decode(self, data: Sequence[Any]) -> Any:
        """The raw value from this resource's `count` registers (ints) or bits (bools), extra items ignored."""
        raise NotImplementedError

    def decode_block(self, block: RegisterBlock, offset: int) -> Any:
        """The raw value from a coalesced read: this resource's registers start at `block.words[offset]`."""
        return self.decode(block.words[offset : offset + self.count])

    def encode(self, value: Any, *, current: Sequence[int] | None = None) -> list[int] | list[bool]:
        """Registers (ints) or coils (bools) that store `value`. ContractInvalid if it cannot be stored."""
        if not self.table.writable:
            raise ContractInvalid(f"{self.table.value} are read-only")
        limit = MAX_WRITE_BITS if self.table.is_bits else MAX_WRITE_REGISTERS
        if self.count > limit:
            raise ContractInvalid(f"{self!r} spans {self.count}; one Modbus write takes at most {limit}")
        return self._encode(value, current)

    def _encode(self, value: Any, current: Sequence[int] | None) -> list[int] | list[bool]:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.table.value}@{self.address}+{self.count}, {self.value_type.value})"


class _NumericCodec(ResourceCodec):
    __slots__ = ("_array", "_decode", "_elements", "_encode_raw", "_little", "_value", "_words")

    def __init__(self, attributes: ModbusAttributes, value_type: ValueType) -> None:
        element = ARRAY_ELEMENT.get(value_type, value_type)
        raw = attributes.raw_type or element
        code, words = _LAYOUT[raw]
        self._array = element is not value_type
        elements = (attributes.array_length or 1) if self._array else 1
        super().__init__(attributes, value_type, words * elements)
        self._elements = elements
        self._words, self._value = _structs(code, elements, words, attributes.is_byte_swap, attributes.is_word_swap)
        self._little = self._words.format.startswith("<")
        self._decode = _decoder(raw, element)
        self._encode_raw = _encoder(element, raw)

    def _convert(self, raw: tuple[Any, ...]) -> Any:
        conv = self._decode
        if self._array:
            return list(raw) if conv is None else [conv(r) for r in raw]
        return raw[0] if conv is None else conv(raw[0])

    def decode(self, data: Sequence[Any]) -> Any:
        n = self.count
        if len(data) != n:
            if len(data) < n:
                raise _short(data, n, repr(self))
            data = data[:n]
        try:
            return self._convert(self._value.unpack(self._words.pack(*data)))
        except struct.error as err:
            raise ServerError(f"{self!r}: bad register values {list(data)}: {err}") from None

    def decode_block(self, block: RegisterBlock, offset: int) -> Any:
        if offset < 0 or offset + self.count > len(block.words):
            raise _short(block.words[offset:], self.count, repr(self))
        return self._convert(self._value.unpack_from(block.packed(self._little), offset * 2))

    def _encode(self, value: Any, current: Sequence[int] | None) -> list[int]:
        if self._array:
            n = self._elements
            if not isinstance(value, list | tuple) or len(value) != n:
                raise ContractInvalid(f"{self.value_type.value} write needs a list of {n} values, got {value!r}")
            raws = [self._encode_raw(v) for v in value]
        else:
            raws = [self._encode_raw(value)]
        return list(self._words.unpack(self._value.pack(*raws)))


class _StringCodec(ResourceCodec):
    __slots__ = ("_words",)

    def __init__(self, attributes: ModbusAttributes, value_type: ValueType, registers: int) -> None:
        super().__init__(attributes, value_type, registers)
        self._words = struct.Struct(f"{'<' if attributes.is_byte_swap else '>'}{registers}H")

    def decode(self, data: Sequence[Any]) -> str:
        if len(data) < self.count:
            raise _short(data, self.count, repr(self))
        try:
            raw = self._words.pack(*data[: self.count])
        except struct.error as err:
            raise ServerError(f"{self!r}: bad register values: {err}") from None
        return raw.strip(b"\0").split(b"\0", 1)[0].decode("utf-8", "replace")

    def _encode(self, value: Any, current: Sequence[int] | None) -> list[int]:
        if not isinstance(value, str):
            raise ContractInvalid(f"String write needs text, got {value!r}")
        try:
            raw = value.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate, e.g. from JSON "\ud800"
            raise ContractInvalid(f"String write {value!r} is not valid Unicode text") from None
        room = 2 * self.count
        if len(raw) > room:
            raise ContractInvalid(
                f"string of {len(raw)} bytes does not fit stringRegisterSize {self.count} ({room} bytes)"
            )
        return list(self._words.unpack(raw.ljust(room, b"\0")))


class _BitsCodec(ResourceCodec):
    """Bool or BoolArray in COILS / DISCRETE_INPUTS."""

    __slots__ = ()

    def decode(self, data: Sequence[Any]) -> Any:
        if len(data) < self.count:
            raise _short(data, self.count, repr(self))
        if self.value_type is ValueType.BOOL:
            return bool(data[0])
        return [bool(b) for b in data[: self.count]]

    def _encode(self, value: Any, current: Sequence[int] | None) -> list[bool]:
        if self.value_type is ValueType.BOOL:
            return [_as_bool(value)]
        if not isinstance(value, list | tuple) or len(value) != self.count:
            raise ContractInvalid(f"BoolArray write needs a list of {self.count} values, got {value!r}")
        return [_as_bool(v) for v in value]


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise ContractInvalid(f"cannot write {value!r} to a Bool")


def _swap16(w: int) -> int:
    return ((w & 0xFF) << 8) | (w >> 8)


class _RegisterBoolCodec(ResourceCodec):
    """Bool held in a register: bit `bit`, or the whole register when no bit is given."""

    __slots__ = ("_bit", "_swap")

    def __init__(self, attributes: ModbusAttributes, value_type: ValueType) -> None:
        super().__init__(attributes, value_type, 1)
        self._bit = attributes.bit
        self._swap = attributes.is_byte_swap

    @property
    def needs_current(self) -> bool:
        return self._bit is not None

    def decode(self, data: Sequence[Any]) -> bool:
        if not data:
            raise _short(data, 1, repr(self))
        word = int(data[0])
        if self._swap:
            word = _swap16(word)
        return word != 0 if self._bit is None else bool((word >> self._bit) & 1)

    def _encode(self, value: Any, current: Sequence[int] | None) -> list[int]:
        on = _as_bool(value)
        if self._bit is None:
            word = int(on)
        else:
            if not current:
                raise ServerError(f"{self!r}: writing bit {self._bit} needs the register's current value")
            word = _swap16(current[0]) if self._swap else int(current[0])
            word = word | (1 << self._bit) if on else word & ~(1 << self._bit)
        return [_swap16(word) if self._swap else word]


# ------------------------------------------------------------------------------------------------- compilation

_UNSUPPORTED: Final = {
    ValueType.INT8: "Modbus registers are 16 bits: use Int16/Uint16 (mask and shift pick out a byte)",
    ValueType.UINT8: "Modbus registers are 16 bits: use Int16/Uint16 (mask and shift pick out a byte)",
    ValueType.INT8_ARRAY: "Modbus registers are 16 bits: use Int16Array/Uint16Array",
    ValueType.UINT8_ARRAY: "Modbus registers are 16 bits: use Int16Array/Uint16Array",
    ValueType.BINARY: "Modbus has no Binary values",
    ValueType.OBJECT: "Modbus has no Object values",
    ValueType.OBJECT_ARRAY: "Modbus has no Object values",
    ValueType.STRING_ARRAY: "use one String resource per string",
}


def _build(a: ModbusAttributes, vt: ValueType) -> ResourceCodec:
    why = _UNSUPPORTED.get(vt)
    if why is not None:
        raise ContractInvalid(f"valueType {vt.value} is not supported: {why}")
    element = ARRAY_ELEMENT.get(vt)
    table = a.primary_table
    if a.bit is not None and vt is not ValueType.BOOL:
        raise ContractInvalid(f"a bit address (register.bit) reads a Bool, not {vt.value}")
    if a.raw_type is not None and (element or vt) not in _LAYOUT:
        raise ContractInvalid(f"rawType applies to numeric resources, not {vt.value}")
    if element is None and a.array_length is not None:
        raise ContractInvalid(f"arrayLength applies to *Array value types, not {vt.value}")
    if element is not None and a.array_length is None:
        raise ContractInvalid(f"{vt.value} needs arrayLength (the number of elements)")

    codec: ResourceCodec
    if vt is ValueType.BOOL or element is ValueType.BOOL:
        if table.is_bits:
            codec = _BitsCodec(a, vt, a.array_length or 1)
        elif element is None:
            codec = _RegisterBoolCodec(a, vt)
        else:
            raise ContractInvalid(f"BoolArray needs COILS or DISCRETE_INPUTS, not {table.value}")
    elif table.is_bits:
        raise ContractInvalid(f"{vt.value} needs INPUT_REGISTERS or HOLDING_REGISTERS; {table.value} hold single bits")
    elif vt is ValueType.STRING:
        if a.string_register_size is None:
            raise ContractInvalid("String needs stringRegisterSize (registers, 2 characters each), 1-123")
        codec = _StringCodec(a, vt, a.string_register_size)
    else:
        codec = _NumericCodec(a, vt)

    limit = MAX_READ_BITS if table.is_bits else MAX_READ_REGISTERS
    unit = "bits" if table.is_bits else "registers"
    if codec.count > limit:
        raise ContractInvalid(f"{vt.value} spans {codec.count} {unit}; one Modbus request reads at most {limit}")
    if codec.end > 0x10000:
        raise ContractInvalid(f"{vt.value} at {a.starting_address} runs past the last address 65535")
    return codec


@lru_cache(maxsize=4096)
def _compile_cached(attributes: ModbusAttributes, value_type: ValueType) -> ResourceCodec:
    return _build(attributes, value_type)


def compile_codec(
    attributes: ModbusAttributes | Mapping[str, Any], value_type: ValueType, *, resource: str | None = None
) -> ResourceCodec:
    """The codec of one resource (cached per attributes and value type). ContractInvalid names the resource."""
    attrs = attributes if isinstance(attributes, ModbusAttributes) else parse_attributes(attributes, resource=resource)
    try:
        return _compile_cached(attrs, value_type)
    except ContractInvalid as err:
        if resource:
            raise ContractInvalid(f"resource {resource}: {err.message}") from None
        raise


def register_count(attributes: ModbusAttributes | Mapping[str, Any], value_type: ValueType) -> int:
    """Registers (or coils/discrete inputs) the resource occupies."""
    return compile_codec(attributes, value_type).count


def decode(data: Sequence[Any], attributes: ModbusAttributes | Mapping[str, Any], value_type: ValueType) -> Any:
    """The raw value of a resource from its registers or bits (see ResourceCodec.decode)."""
    return compile_codec(attributes, value_type).decode(data)


def encode(
    value: Any,
    attributes: ModbusAttributes | Mapping[str, Any],
    value_type: ValueType,
    *,
    current: Sequence[int] | None = None,
) -> list[int] | list[bool]:
    """The registers or coils that store a raw value (see ResourceCodec.encode)."""
    return compile_codec(attributes, value_type).encode(value, current=current)


__all__ = [
    "MAX_READ_BITS",
    "MAX_READ_REGISTERS",
    "MAX_WRITE_BITS",
    "MAX_WRITE_REGISTERS",
    "PrimaryTable",
    "RegisterBlock",
    "ResourceCodec",
    "compile_codec",
    "decode",
    "encode",
    "register_count",
]
