"""Random raw values for every EdgeX value type, within a resource's minimum/maximum.

The rules follow EdgeX's device-virtual where it has one: integers and floats are uniform within
[minimum, maximum] clipped to the value type's range, or the type's whole range when the profile gives no
bound (a missing bound is the type's own; an empty range falls back to the whole range, as device-virtual
does for an invalid one); Bool is a coin flip; arrays have a fixed number of elements, each drawn as its
element type; Binary is random bytes. device-virtual has no random String or Object, so ours are:
String: 12 letters and digits; Object: the profile's defaultValue JSON with every leaf redrawn as its own
kind (numbers within minimum/maximum, else 0..100), or, without one, an object of one value of each kind.
"""

from __future__ import annotations

import json
import math
import random
import string
import sys
from typing import Any, Final

from edgeplane_common.edgex.values import ARRAY_ELEMENT, FLOAT32_MAX, INT_RANGES, to_float32
from edgeplane_common.models import ValueType

FLOAT_LIMITS: Final[dict[ValueType, float]] = {ValueType.FLOAT32: FLOAT32_MAX, ValueType.FLOAT64: sys.float_info.max}
STRING_LENGTH: Final = 12
_ALPHABET: Final = string.ascii_letters + string.digits
_LEAF_RANGE: Final = (0, 100)  # Object leaves when the profile gives no minimum/maximum


def _bound(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def int_bounds(value_type: ValueType, minimum: float | None, maximum: float | None) -> tuple[int, int]:
    """The inclusive integer range a random `value_type` value is drawn from."""
    lo, hi = INT_RANGES[value_type]
    low, high = _bound(minimum), _bound(maximum)
    a = lo if low is None else max(lo, math.ceil(low))
    b = hi if high is None else min(hi, math.floor(high))
    return (a, b) if a <= b else (lo, hi)


def float_bounds(value_type: ValueType, minimum: float | None, maximum: float | None) -> tuple[float, float]:
    """The closed float range a random `value_type` value is drawn from."""
    limit = FLOAT_LIMITS[value_type]
    low, high = _bound(minimum), _bound(maximum)
    a = -limit if low is None else max(-limit, low)
    b = limit if high is None else min(limit, high)
    return (a, b) if a <= b else (-limit, limit)


class ValueGenerator:
    """Draws raw driver values (what `CommandValue.value` holds) for a value type and its bounds."""

    def __init__(self, *, rng: random.Random | None = None, binary_size: int = 64, array_length: int = 5) -> None:
        self.rng = rng or random.Random()
        self.binary_size = binary_size
        self.array_length = array_length

    def value(
        self,
        value_type: ValueType,
        minimum: float | None = None,
        maximum: float | None = None,
        default: str | None = None,
    ) -> Any:
        """A random value of `value_type`; `default` (the profile's defaultValue) shapes Object values."""
        element = ARRAY_ELEMENT.get(value_type)
        if element is ValueType.OBJECT:
            return self.json_array(minimum, maximum, default)
        if element is not None:
            return [self.value(element, minimum, maximum) for _ in range(self.array_length)]
        if value_type in INT_RANGES:
            return self.rng.randint(*int_bounds(value_type, minimum, maximum))
        if value_type in FLOAT_LIMITS:
            return self.floating(value_type, *float_bounds(value_type, minimum, maximum))
        if value_type is ValueType.BOOL:
            return self.rng.random() < 0.5
        if value_type is ValueType.STRING:
            return self.text()
        if value_type is ValueType.BINARY:
            return self.rng.randbytes(self.binary_size)
        return self.json_object(minimum, maximum, default)

    def floating(self, value_type: ValueType, lo: float, hi: float) -> float:
        # From the midpoint, so that hi - lo cannot overflow (the whole Float64 range is 2 * max).
        mid, half = lo / 2 + hi / 2, hi / 2 - lo / 2
        for _ in range(8):
            x = min(max(mid + (2 * self.rng.random() - 1) * half, lo), hi)
            if value_type is ValueType.FLOAT64:
                return x
            x = to_float32(x)
            if lo <= x <= hi:  # rounding to float32 may step just outside a bound that float32 cannot hold
                return x
        return to_float32(mid)

    def text(self) -> str:
        return "".join(self.rng.choices(_ALPHABET, k=STRING_LENGTH))

    def json_object(self, minimum: float | None, maximum: float | None, default: str | None) -> Any:
        shape = _json(default)
        if isinstance(shape, dict):
            return self._redraw(shape, minimum, maximum)
        return self._redraw({"bool": True, "int": 0, "float": 0.5, "string": ""}, minimum, maximum)

    def json_array(self, minimum: float | None, maximum: float | None, default: str | None) -> list[Any]:
        shape = _json(default)
        if isinstance(shape, list) and shape:
            return [self._redraw(item, minimum, maximum) for item in shape]
        element = json.dumps(shape) if isinstance(shape, dict) else None
        return [self.json_object(minimum, maximum, element) for _ in range(self.array_length)]

    def _redraw(self, shape: Any, minimum: float | None, maximum: float | None) -> Any:
        """`shape` with every leaf replaced by a random value of the same JSON kind."""
        if isinstance(shape, dict):
            return {k: self._redraw(v, minimum, maximum) for k, v in shape.items()}
        if isinstance(shape, list):
            return [self._redraw(v, minimum, maximum) for v in shape]
        if isinstance(shape, bool):
            return self.rng.random() < 0.5
        given_low, given_high = _bound(minimum), _bound(maximum)
        low = _LEAF_RANGE[0] if given_low is None else given_low
        high = _LEAF_RANGE[1] if given_high is None else given_high
        if isinstance(shape, int):
            a, b = math.ceil(low), math.floor(high)
            return self.rng.randint(a, b) if a <= b else a
        if isinstance(shape, float):
            return self.floating(ValueType.FLOAT64, low, high) if low <= high else low
        if isinstance(shape, str):
            return self.text()
        return shape  # null stays null


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None
