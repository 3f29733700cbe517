"""Simulator configuration: the YAML schema (pydantic), point encoding and loading with readable errors.

A point's registers are built here with `struct` (big-endian, as Modbus is) and EdgeX's swap meaning:
`byte_swap` (isByteSwap) swaps the two bytes inside every register, `word_swap` (isWordSwap) reverses the
order of the registers (CDAB for 32-bit values, GHEFCDAB for 64-bit ones). EdgeX itself swaps 32-bit
values only; reversing all four words is the usual 64-bit reading (pymodbus `word_order="little"`).
"""

from __future__ import annotations

import itertools
import math
import struct
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeAlias

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PositiveFloat,
    PositiveInt,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

Value: TypeAlias = bool | int | float | str
"""A decoded point value."""

Scalar = StrictBool | StrictInt | StrictFloat | StrictStr

FLOAT32_MAX = 3.4028234663852886e38
MAX_STRING_REGISTERS = 123  # what one write-multiple-registers request can carry


class SimConfigError(ValueError):
    """The simulator configuration is invalid; the message names the path of every problem."""


class Table(StrEnum):
    COILS = "coils"
    DISCRETE_INPUTS = "discrete_inputs"
    INPUT_REGISTERS = "input_registers"
    HOLDING_REGISTERS = "holding_registers"

    @property
    def is_bits(self) -> bool:
        return self in (Table.COILS, Table.DISCRETE_INPUTS)

    @property
    def client_writable(self) -> bool:
        """Whether Modbus has function codes that write this table."""
        return self in (Table.COILS, Table.HOLDING_REGISTERS)

    @property
    def read_function_code(self) -> int:
        return _READ_FC[self]


_READ_FC = {Table.COILS: 1, Table.DISCRETE_INPUTS: 2, Table.HOLDING_REGISTERS: 3, Table.INPUT_REGISTERS: 4}


class PointType(StrEnum):
    BOOL = "bool"
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"

    @property
    def is_int(self) -> bool:
        return self in _INT_FORMATS

    @property
    def is_float(self) -> bool:
        return self in (PointType.FLOAT32, PointType.FLOAT64)

    @property
    def struct_format(self) -> str:
        return _INT_FORMATS.get(self) or {PointType.FLOAT32: "f", PointType.FLOAT64: "d"}[self]

    @property
    def fixed_registers(self) -> int:
        """Registers taken by a numeric type (struct size / 2)."""
        return struct.calcsize(">" + self.struct_format) // 2

    @property
    def int_range(self) -> tuple[int, int]:
        bits = self.fixed_registers * 16
        if self in (PointType.INT16, PointType.INT32, PointType.INT64):
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return 0, (1 << bits) - 1


_INT_FORMATS = {
    PointType.INT16: "h",
    PointType.UINT16: "H",
    PointType.INT32: "i",
    PointType.UINT32: "I",
    PointType.INT64: "q",
    PointType.UINT64: "Q",
}


class _Strict(BaseModel):
    # Unknown keys are almost always typos in a hand-written YAML file: refuse them.
    model_config = ConfigDict(extra="forbid", frozen=True)


# --- value behaviours -------------------------------------------------------------------------------------


class Ramp(_Strict):
    """Sawtooth: moves by `step` every tick and restarts at the other end once it would leave [min, max]."""

    min: float
    max: float
    step: float
    start: float | None = None

    @model_validator(mode="after")
    def _check(self) -> Ramp:
        if self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        if self.step == 0:
            raise ValueError("step must not be 0")
        if self.start is not None and not self.min <= self.start <= self.max:
            raise ValueError(f"start ({self.start}) must lie within [min, max]")
        return self

    @property
    def initial(self) -> float:
        if self.start is not None:
            return self.start
        return self.min if self.step > 0 else self.max


class Sine(_Strict):
    """offset + amplitude * sin(2π t / period_s), t being simulated time (ticks * tick_interval)."""

    amplitude: float
    period_s: PositiveFloat
    offset: float = 0.0


class RandomWalk(_Strict):
    """Moves by a uniform random amount in [-step, step] every tick, clamped to [min, max]."""

    min: float
    max: float
    step: PositiveFloat
    seed: int | None = None
    start: float | None = None

    @model_validator(mode="after")
    def _check(self) -> RandomWalk:
        if self.min >= self.max:
            raise ValueError(f"min ({self.min}) must be below max ({self.max})")
        if self.start is not None and not self.min <= self.start <= self.max:
            raise ValueError(f"start ({self.start}) must lie within [min, max]")
        return self

    @property
    def initial(self) -> float:
        return self.start if self.start is not None else (self.min + self.max) / 2


class Counter(_Strict):
    """Adds `step` every tick; wraps modulo `wrap` if given, else at the type's range like a PLC counter."""

    step: float = 1
    start: float = 0
    wrap: PositiveFloat | None = None

    @model_validator(mode="after")
    def _check(self) -> Counter:
        if self.step == 0:
            raise ValueError("step must not be 0")
        return self


class Toggle(_Strict):
    """A bool that flips every `every` ticks."""

    every: PositiveInt = 1
    start: StrictBool = False


Behaviour: TypeAlias = Ramp | Sine | RandomWalk | Counter | Toggle

_BEHAVIOUR_KEYS = ("constant", "holds", "ramp", "sine", "random_walk", "counter", "toggle")
_DYNAMIC_KEYS = ("ramp", "sine", "random_walk", "counter", "toggle")


# --- points -----------------------------------------------------------------------------------------------


class _PointBase(_Strict):
    """Shared fields; exactly one behaviour key may be given (none: `holds` the type's zero)."""

    name: Annotated[str, Field(min_length=1)]
    address: Annotated[int, Field(ge=0, le=65535)]
    writable: bool | None = None
    """Whether clients may write it; default: only `holds` points in coils/holding_registers."""
    constant: Scalar | None = None
    holds: Scalar | None = None
    ramp: Ramp | None = None
    sine: Sine | None = None
    random_walk: RandomWalk | None = None
    counter: Counter | None = None
    toggle: Toggle | None = None

    type: PointType

    @property
    def behaviour_key(self) -> str:
        given = [k for k in _BEHAVIOUR_KEYS if getattr(self, k) is not None]
        return given[0] if given else "holds"

    @property
    def behaviour(self) -> Behaviour | None:
        """The dynamic behaviour that the tick drives, or None for constant/holds points."""
        key = self.behaviour_key
        return getattr(self, key) if key in _DYNAMIC_KEYS else None  # type: ignore[no-any-return]

    @property
    def register_count(self) -> int:
        """Registers (or bits, in bit tables) the point occupies."""
        return 1

    def is_writable(self, table: Table) -> bool:
        if not table.client_writable:
            return False
        return self.writable if self.writable is not None else self.behaviour_key == "holds"

    def initial_value(self) -> Value:
        key = self.behaviour_key
        if key in ("constant", "holds"):
            given: Value | None = getattr(self, key)
            return self.coerce(given if given is not None else self.zero())
        behaviour = self.behaviour
        if isinstance(behaviour, Ramp | RandomWalk):
            return self.coerce(behaviour.initial)
        if isinstance(behaviour, Sine):
            return self.coerce(behaviour.offset)
        if isinstance(behaviour, Counter):
            return self.coerce(behaviour.start)
        assert isinstance(behaviour, Toggle)
        return behaviour.start

    def zero(self) -> Value:
        if self.type is PointType.BOOL:
            return False
        if self.type is PointType.STRING:
            return ""
        return 0.0 if self.type.is_float else 0

    def coerce(self, value: Value) -> Value:
        """Bring a computed value into the point's type: round and clamp integers, clamp float32."""
        if self.type is PointType.BOOL or self.type is PointType.STRING:
            return value
        assert not isinstance(value, str)
        if self.type.is_int:
            low, high = self.type.int_range
            return max(low, min(high, round(value)))
        if self.type is PointType.FLOAT32:
            return max(-FLOAT32_MAX, min(FLOAT32_MAX, float(value)))
        return float(value)

    @model_validator(mode="after")
    def _check_behaviour(self) -> _PointBase:
        given = [k for k in _BEHAVIOUR_KEYS if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"give one behaviour, not {' and '.join(given)}")
        key = given[0] if given else "holds"
        allowed = self._allowed_behaviours()
        if key not in allowed:
            raise ValueError(f"a {self.type.value} point cannot use {key!r} (allowed: {', '.join(allowed)})")
        if key in ("constant", "holds") and given:
            self._check_scalar(key, getattr(self, key))
        behaviour = self.behaviour
        if self.type.is_int or self.type is PointType.FLOAT32:
            self._check_range(behaviour)
        return self

    def _allowed_behaviours(self) -> tuple[str, ...]:
        if self.type is PointType.BOOL:
            return ("constant", "holds", "toggle")
        if self.type is PointType.STRING:
            return ("constant", "holds")
        return ("constant", "holds", "ramp", "sine", "random_walk", "counter")

    def _check_scalar(self, key: str, value: Value) -> None:
        kind = self.type
        if kind is PointType.BOOL:
            ok = isinstance(value, bool)
        elif kind is PointType.STRING:
            ok = isinstance(value, str)
        elif kind.is_int:
            ok = isinstance(value, int) and not isinstance(value, bool)
        else:
            ok = isinstance(value, int | float) and not isinstance(value, bool)
        if not ok:
            raise ValueError(f"{key}: {value!r} is not a valid {kind.value} value")
        if kind.is_int:
            low, high = kind.int_range
            if not low <= int(value) <= high:
                raise ValueError(f"{key}: {value} is outside the {kind.value} range [{low}, {high}]")
        if kind is PointType.FLOAT32 and abs(float(value)) > FLOAT32_MAX:
            raise ValueError(f"{key}: {value} does not fit a float32")

    def _check_range(self, behaviour: Behaviour | None) -> None:
        low, high = self.type.int_range if self.type.is_int else (-FLOAT32_MAX, FLOAT32_MAX)
        if isinstance(behaviour, Ramp | RandomWalk):
            bounds: tuple[float, float] | None = (behaviour.min, behaviour.max)
        elif isinstance(behaviour, Sine):
            span = abs(behaviour.amplitude)
            bounds = (behaviour.offset - span, behaviour.offset + span)
        else:
            bounds = None
        if bounds is not None and (bounds[0] < low or bounds[1] > high):
            raise ValueError(f"the values [{bounds[0]}, {bounds[1]}] do not fit the {self.type.value} range")
        if isinstance(behaviour, Counter) and self.type.is_int:
            for label, number in (("step", behaviour.step), ("start", behaviour.start), ("wrap", behaviour.wrap)):
                if number is not None and not float(number).is_integer():
                    raise ValueError(f"counter {label} must be a whole number for a {self.type.value} point")


class BitPoint(_PointBase):
    """A coil or discrete input (one bit)."""

    type: PointType = PointType.BOOL

    @field_validator("type")
    @classmethod
    def _only_bool(cls, value: PointType) -> PointType:
        if value is not PointType.BOOL:
            raise ValueError(f"coils and discrete_inputs hold bool points only, not {value.value}")
        return value


class RegisterPoint(_PointBase):
    """An input or holding register value of one or more 16-bit registers."""

    type: Annotated[PointType, Field(description="value type in the registers")]
    length: Annotated[int, Field(ge=1, le=MAX_STRING_REGISTERS)] | None = None
    """String points only: registers reserved for the text (2 bytes each, NUL-padded)."""
    byte_swap: bool = False
    word_swap: bool = False
    encoding: Literal["ascii", "utf-8", "latin-1"] = "utf-8"

    @property
    def register_count(self) -> int:
        if self.type is PointType.STRING:
            assert self.length is not None
            return self.length
        return self.type.fixed_registers

    @model_validator(mode="after")
    def _check_layout(self) -> RegisterPoint:
        if self.type is PointType.BOOL:
            raise ValueError("bool points belong in coils or discrete_inputs (or read a bit of a uint16)")
        if self.type is PointType.STRING:
            if self.length is None:
                raise ValueError("a string point needs length (registers)")
            if self.word_swap:
                raise ValueError("word_swap does not apply to strings (byte_swap does: 'BA DC' text)")
            self.encode(self.initial_value())  # the text must fit
        elif self.length is not None:
            raise ValueError("length applies to string points only")
        if self.word_swap and self.register_count < 2:
            raise ValueError(f"word_swap needs a 32- or 64-bit type, not {self.type.value}")
        if self.address + self.register_count > 65536:
            raise ValueError(f"{self.register_count} registers from address {self.address} pass 65535")
        return self

    def encode(self, value: Value) -> list[int]:
        """Registers for `value`, with this point's swaps."""
        if self.type is PointType.STRING:
            assert isinstance(value, str)
            assert self.length is not None
            raw = value.encode(self.encoding)
            if len(raw) > 2 * self.length:
                raise ValueError(f"{value!r} needs {len(raw)} bytes, the point holds {2 * self.length}")
            raw = raw.ljust(2 * self.length, b"\0")
        else:
            assert not isinstance(value, str)
            number: float | int = int(value) if self.type.is_int else float(value)
            raw = struct.pack(">" + self.type.struct_format, number)
        words = [raw[i : i + 2] for i in range(0, len(raw), 2)]
        if self.byte_swap:
            words = [w[::-1] for w in words]
        if self.word_swap:
            words.reverse()
        return [int.from_bytes(w, "big") for w in words]

    def decode(self, registers: list[int]) -> Value:
        """The value the registers hold (inverse of `encode`)."""
        words = [r.to_bytes(2, "big") for r in registers]
        if self.word_swap:
            words.reverse()
        if self.byte_swap:
            words = [w[::-1] for w in words]
        raw = b"".join(words)
        if self.type is PointType.STRING:
            return raw.rstrip(b"\0").decode(self.encoding, errors="replace")
        result: Value = struct.unpack(">" + self.type.struct_format, raw)[0]
        return result


# --- units and the whole file -----------------------------------------------------------------------------


class Unit(_Strict):
    """One Modbus unit id (slave) behind the simulator's endpoint."""

    unit_id: Annotated[int, Field(ge=0, le=255)]
    name: str | None = None
    fill_gaps: bool = True
    """Registers between declared points read as 0 (so coalesced reads may bridge gaps); false: exception 2.
    Bit tables are always served in whole 16-bit words (pymodbus), so unused coils near used ones read False."""
    coils: list[BitPoint] = Field(default_factory=list)
    discrete_inputs: list[BitPoint] = Field(default_factory=list)
    input_registers: list[RegisterPoint] = Field(default_factory=list)
    holding_registers: list[RegisterPoint] = Field(default_factory=list)

    def points(self, table: Table | str) -> list[BitPoint] | list[RegisterPoint]:
        result: list[BitPoint] | list[RegisterPoint] = getattr(self, Table(table).value)
        return result

    def find(self, name: str) -> tuple[Table, BitPoint | RegisterPoint]:
        for table in Table:
            for point in self.points(table):
                if point.name == name:
                    return table, point
        raise KeyError(f"unit {self.unit_id} has no point {name!r}")

    @model_validator(mode="after")
    def _check_points(self) -> Unit:
        seen: dict[str, str] = {}
        for table in Table:
            taken: list[tuple[int, int, str]] = []
            for index, point in enumerate(self.points(table)):
                where = f"{table.value}[{index}] ({point.name!r})"
                if point.name in seen:
                    raise ValueError(f"{where}: the name is also used by {seen[point.name]}")
                seen[point.name] = where
                if point.writable and not table.client_writable:
                    raise ValueError(f"{where}: {table.value} cannot be written by clients; drop writable")
                taken.append((point.address, point.address + point.register_count, where))
            taken.sort()
            for (_, end, first), (start, _, second) in itertools.pairwise(taken):
                if start < end:
                    raise ValueError(f"{second} overlaps {first}")
        return self


class SimConfig(_Strict):
    """A simulator file: the tick interval and the unit ids served on one endpoint."""

    tick_interval: PositiveFloat = 1.0
    units: Annotated[list[Unit], Field(min_length=1)]

    def unit(self, unit_id: int) -> Unit:
        for unit in self.units:
            if unit.unit_id == unit_id:
                return unit
        raise KeyError(f"no unit id {unit_id} in the simulator configuration")

    @model_validator(mode="after")
    def _unique_units(self) -> SimConfig:
        ids = [u.unit_id for u in self.units]
        duplicated = sorted({i for i in ids if ids.count(i) > 1})
        if duplicated:
            raise ValueError(f"unit ids declared more than once: {duplicated}")
        return self


def parse_config(data: Mapping[str, Any]) -> SimConfig:
    """Validate an already-parsed mapping; errors name each problem's path (units[0].holding_registers[2])."""
    try:
        return SimConfig.model_validate(data)
    except ValidationError as err:
        lines: list[str] = []
        for error in err.errors():
            loc = error["loc"]
            if loc and loc[-1] in _SCALAR_TAGS:
                # One line for a value no member of the bool/int/float/str union accepted.
                line = f"{_path(data, loc[:-1])}: expected a bool, number or string"
            else:
                line = f"{_path(data, loc)}: {_message(error)}"
            if line not in lines:
                lines.append(line)
        raise SimConfigError("invalid simulator configuration:\n  " + "\n  ".join(lines)) from None


def load_config(path: str | Path) -> SimConfig:
    """Read and validate a YAML file (blocking; call it before the loop starts or in a thread)."""
    text = Path(path).read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SimConfigError(f"{path}: not valid YAML: {err}") from None
    if not isinstance(data, Mapping):
        raise SimConfigError(f"{path}: expected a mapping with tick_interval and units")
    try:
        return parse_config(data)
    except SimConfigError as err:
        raise SimConfigError(f"{path}: {err}") from None


_SCALAR_TAGS = {"bool", "int", "float", "str"}


def _message(error: Any) -> str:
    msg = str(error["msg"])
    return msg.removeprefix("Value error, ")


def _path(data: Any, loc: tuple[int | str, ...]) -> str:
    """`units[0] (unit 1).holding_registers[3] ('speed').ramp.step` from a pydantic location."""
    out = ""
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and part < len(node) else None
            label = _label(node)
            if label:
                out += f" ({label})"
        else:
            if part.startswith(("function-after", "function-wrap", "tagged-union")):
                continue
            out += ("." if out else "") + part
            node = node.get(part) if isinstance(node, Mapping) else None
    return out or "(top level)"


def _label(node: Any) -> str | None:
    if not isinstance(node, Mapping):
        return None
    if "name" in node:
        return repr(node["name"])
    if "unit_id" in node:
        return f"unit {node['unit_id']}"
    return None


def sine_value(sine: Sine, seconds: float) -> float:
    return sine.offset + sine.amplitude * math.sin(2 * math.pi * seconds / sine.period_s)
