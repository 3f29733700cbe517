"""The scalar and aggregate functions rules may call, by their eKuiper names.

Every function takes already evaluated arguments and answers None when an argument is None or of a type it
cannot take (SQL's null propagation), never raising: a bad value in one reading must not stop the rule.
"""

from __future__ import annotations

import math
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

Number = int | float


def _num(v: Any) -> Number | None:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return v


def _numeric(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` over numbers only: None for a missing or non-numeric argument, or a math domain error."""

    def call(*args: Any) -> Any:
        nums = [_num(a) for a in args]
        if any(n is None for n in nums):
            return None
        try:
            return fn(*nums)
        except (ValueError, ZeroDivisionError, OverflowError, TypeError):
            return None

    return call


def _text(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` whose first argument is a string: None unless it is one."""

    def call(s: Any, *args: Any) -> Any:
        if not isinstance(s, str) or any(a is None for a in args):
            return None
        try:
            return fn(s, *args)
        except (ValueError, TypeError, IndexError, re.error):
            return None

    return call


def _round(x: Number, digits: Number = 0) -> Number:
    return round(x, int(digits)) if digits else float(round(x))


def _log(a: Number, b: Number | None = None) -> float:
    # eKuiper: log(x) is base 10, log(b, x) base b.
    return math.log10(a) if b is None else math.log(a, b)


def _mod(a: Number, b: Number) -> Number:
    return math.fmod(a, b) if isinstance(a, float) or isinstance(b, float) else int(math.fmod(a, b))


def _sign(x: Number) -> int:
    return (x > 0) - (x < 0)


def _int(fn: Callable[..., int]) -> Callable[..., Any]:
    def call(*args: Any) -> Any:
        if any(isinstance(a, bool) or not isinstance(a, int) for a in args):
            return None
        return fn(*args)

    return call


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _split_value(s: str, sep: str, index: int) -> str | None:
    parts = s.split(sep)
    return parts[int(index)] if -len(parts) <= int(index) < len(parts) else None


def _substring(s: str, start: int, end: int | None = None) -> str:
    # eKuiper: substring(s, start[, end]), 0-based, end exclusive.
    return s[int(start) :] if end is None else s[int(start) : int(end)]


def _coalesce(*args: Any) -> Any:
    return next((a for a in args if a is not None), None)


def _isnull(v: Any) -> bool:
    return v is None


def cast_value(v: Any, to: str) -> Any:
    """CAST(v AS to) for eKuiper's types (float, bigint, string, boolean); None when it does not convert."""
    try:
        if to in ("float", "double", "real", "decimal"):
            return float(v)
        if to in ("bigint", "int", "integer", "smallint", "tinyint"):
            return int(float(v)) if isinstance(v, str) else int(v)
        if to in ("string", "text", "varchar", "char"):
            return _to_text(v)
        if to in ("boolean", "bool"):
            if isinstance(v, str):
                return {"true": True, "false": False, "1": True, "0": False}.get(v.lower())
            return bool(v)
    except (TypeError, ValueError, OverflowError):
        return None
    return None


def _to_text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def _concat(*args: Any) -> str | None:
    if any(a is None for a in args):
        return None
    return "".join(_to_text(a) or "" for a in args)


@dataclass(frozen=True, slots=True)
class Scalar:
    fn: Callable[..., Any]
    min_args: int
    max_args: int


SCALARS: dict[str, Scalar] = {
    # math
    "abs": Scalar(_numeric(abs), 1, 1),
    "ceil": Scalar(_numeric(math.ceil), 1, 1),
    "floor": Scalar(_numeric(math.floor), 1, 1),
    "round": Scalar(_numeric(_round), 1, 2),
    "sqrt": Scalar(_numeric(math.sqrt), 1, 1),
    "power": Scalar(_numeric(lambda a, b: a**b), 2, 2),
    "exp": Scalar(_numeric(math.exp), 1, 1),
    "ln": Scalar(_numeric(math.log), 1, 1),
    "log": Scalar(_numeric(_log), 1, 2),
    "mod": Scalar(_numeric(_mod), 2, 2),
    "sign": Scalar(_numeric(_sign), 1, 1),
    "sin": Scalar(_numeric(math.sin), 1, 1),
    "cos": Scalar(_numeric(math.cos), 1, 1),
    "tan": Scalar(_numeric(math.tan), 1, 1),
    "asin": Scalar(_numeric(math.asin), 1, 1),
    "acos": Scalar(_numeric(math.acos), 1, 1),
    "atan": Scalar(_numeric(math.atan), 1, 1),
    "atan2": Scalar(_numeric(math.atan2), 2, 2),
    "sinh": Scalar(_numeric(math.sinh), 1, 1),
    "cosh": Scalar(_numeric(math.cosh), 1, 1),
    "tanh": Scalar(_numeric(math.tanh), 1, 1),
    "bitand": Scalar(_int(lambda a, b: a & b), 2, 2),
    "bitor": Scalar(_int(lambda a, b: a | b), 2, 2),
    "bitxor": Scalar(_int(lambda a, b: a ^ b), 2, 2),
    "bitnot": Scalar(_int(lambda a: ~a), 1, 1),
    # strings
    "concat": Scalar(_concat, 1, 64),
    "lower": Scalar(_text(str.lower), 1, 1),
    "upper": Scalar(_text(str.upper), 1, 1),
    "length": Scalar(_text(len), 1, 1),
    "numbytes": Scalar(_text(lambda s: len(s.encode())), 1, 1),
    "trim": Scalar(_text(str.strip), 1, 1),
    "ltrim": Scalar(_text(str.lstrip), 1, 1),
    "rtrim": Scalar(_text(str.rstrip), 1, 1),
    "startswith": Scalar(_text(lambda s, p: s.startswith(p)), 2, 2),
    "endswith": Scalar(_text(lambda s, p: s.endswith(p)), 2, 2),
    "indexof": Scalar(_text(lambda s, p: s.find(p)), 2, 2),
    "substring": Scalar(_text(_substring), 2, 3),
    "lpad": Scalar(_text(lambda s, n: " " * int(n) + s), 2, 2),
    "rpad": Scalar(_text(lambda s, n: s + " " * int(n)), 2, 2),
    "replace": Scalar(_text(lambda s, a, b: s.replace(a, b)), 3, 3),
    "split_value": Scalar(_text(_split_value), 3, 3),
    "regexp_matches": Scalar(_text(lambda s, p: _regex(p).search(s) is not None), 2, 2),
    "regexp_replace": Scalar(_text(lambda s, p, r: _regex(p).sub(r, s)), 3, 3),
    "regexp_substr": Scalar(_text(lambda s, p: m.group(0) if (m := _regex(p).search(s)) else None), 2, 2),
    "format_float": Scalar(_numeric(lambda x, d: f"{x:.{int(d)}f}"), 2, 2),
    # other
    "coalesce": Scalar(_coalesce, 1, 64),
    "isnull": Scalar(_isnull, 1, 1),
}

SCALAR_ALIASES = {
    "ceiling": "ceil",
    "pow": "power",
    "starts_with": "startswith",
    "ends_with": "endswith",
    "substr": "substring",
    "len": "length",
    "char_length": "length",
}


# -- aggregates ----------------------------------------------------------------------------------------


def _numbers(values: Sequence[Any]) -> list[Number]:
    return [v for v in values if isinstance(v, int | float) and not isinstance(v, bool)]


def _avg(values: Sequence[Any]) -> float | None:
    nums = _numbers(values)
    return sum(nums) / len(nums) if nums else None


def _sum(values: Sequence[Any]) -> Number | None:
    nums = _numbers(values)
    return sum(nums) if nums else None


def _min(values: Sequence[Any]) -> Any:
    present = [v for v in values if v is not None]
    try:
        return min(present) if present else None
    except TypeError:
        return None


def _max(values: Sequence[Any]) -> Any:
    present = [v for v in values if v is not None]
    try:
        return max(present) if present else None
    except TypeError:
        return None


def _count(values: Sequence[Any]) -> int:
    return sum(1 for v in values if v is not None)


def _stat(fn: Callable[[list[Number]], float], least: int) -> Callable[[Sequence[Any]], float | None]:
    def call(values: Sequence[Any]) -> float | None:
        nums = _numbers(values)
        if len(nums) < least:
            return None
        try:
            return fn(nums)
        except statistics.StatisticsError:
            return None

    return call


def percentile_cont_sorted(nums: list[Any], fraction: Any) -> Any:
    """percentile_cont over numbers already sorted (not empty)."""
    f = _num(fraction)
    if f is None or not 0 <= f <= 1:
        return None
    pos = f * (len(nums) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(nums) - 1)
    return nums[lo] + (nums[hi] - nums[lo]) * (pos - lo)


def percentile_disc_sorted(nums: list[Any], fraction: Any) -> Any:
    """percentile_disc over numbers already sorted (not empty)."""
    f = _num(fraction)
    if f is None or not 0 <= f <= 1:
        return None
    return nums[max(math.ceil(f * len(nums)) - 1, 0)]


def _percentile_cont(values: Sequence[Any], fraction: Any) -> float | None:
    nums = sorted(_numbers(values))
    return percentile_cont_sorted(nums, fraction) if nums else None


def _percentile_disc(values: Sequence[Any], fraction: Any) -> Number | None:
    nums = sorted(_numbers(values))
    return percentile_disc_sorted(nums, fraction) if nums else None


def _first(values: Sequence[Any]) -> Any:
    return next((v for v in values if v is not None), None)


def _last(values: Sequence[Any]) -> Any:
    return next((v for v in reversed(values) if v is not None), None)


def _collect(values: Sequence[Any]) -> list[Any]:
    return list(values)


@dataclass(frozen=True, slots=True)
class Aggregate:
    fn: Callable[..., Any]
    extra_args: int = 0
    """Constant arguments after the aggregated expression (a percentile's fraction)."""


AGGREGATES: dict[str, Aggregate] = {
    "avg": Aggregate(_avg),
    "sum": Aggregate(_sum),
    "min": Aggregate(_min),
    "max": Aggregate(_max),
    "count": Aggregate(_count),
    "stddev": Aggregate(_stat(statistics.pstdev, 1)),
    "stddevs": Aggregate(_stat(statistics.stdev, 2)),
    "var": Aggregate(_stat(statistics.pvariance, 1)),
    "vars": Aggregate(_stat(statistics.variance, 2)),
    "median": Aggregate(_stat(statistics.median, 1)),
    "percentile_cont": Aggregate(_percentile_cont, 1),
    "percentile_disc": Aggregate(_percentile_disc, 1),
    "first_value": Aggregate(_first),
    "last_value": Aggregate(_last),
    "collect": Aggregate(_collect),
}

AGGREGATE_ALIASES = {
    "average": "avg",
    "stddev_pop": "stddev",
    "stddev_samp": "stddevs",
    "variance": "vars",
    "var_pop": "var",
    "var_samp": "vars",
    "percentile": "percentile_cont",
}
