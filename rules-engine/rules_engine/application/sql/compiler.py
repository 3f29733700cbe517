"""eKuiper's SQL subset, parsed with sqlglot and compiled once per rule into plain Python closures.

    SELECT <expr> [AS name], ... FROM <stream> [WHERE <cond>] [GROUP BY <window>[, <expr>...]] [HAVING <cond>]

User text is never evaluated: sqlglot parses it (MySQL dialect: backquoted identifiers, double-quoted
strings, as eKuiper), and each node of the tree becomes a closure over its children's closures. Semantics:

- A row is one event: its readings by resource name, and the event fields `deviceName`, `profileName`,
  `sourceName`, `origin` and `id` (the event field wins over a reading of the same name). `meta(x)` gives an
  event field, or a reading's metadata object (`meta(temperature)`: valueType, units, origin).
- SQL's three-valued logic: a missing reading is NULL, any operator on NULL gives NULL, and a WHERE or
  HAVING holds only when it is TRUE. A comparison between values of different types is NULL too.
- `/` is true division (eKuiper's Go semantics truncate integers); `DIV` divides integers.
- Windowed queries: an aggregate runs over the rows of its group; a bare column takes the value of the
  group's last row. Without an aggregate in SELECT, each row of the window is output. Each distinct
  aggregate call is a `Slot`; a window keeps a running accumulator per slot and group (`aggregates`), and
  the group-level expressions read a `Group`: its accumulators, row count and last row.

Every error is a `RuleSqlError` (400) naming the line and column and the reason.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import ParseError, TokenError

from edgeplane_common.errors import ContractInvalid
from rules_engine.application.sql.aggregates import Group, Groups, Slot
from rules_engine.application.sql.functions import (
    AGGREGATE_ALIASES,
    AGGREGATES,
    SCALAR_ALIASES,
    SCALARS,
    Aggregate,
    cast_value,
)
from rules_engine.application.sql.windows import UNITS_MS, WindowKind, WindowSpec

Row = dict[str, Any]
Eval = Callable[[Any], Any]
"""A compiled expression: takes a Row, or (in a windowed query's SELECT and HAVING) a `Group`."""


class _Kuiper(MySQL):
    """MySQL's lexical rules (backquoted identifiers, double-quoted strings), as eKuiper's; but `log(x)` is the
    base-10 logarithm as in eKuiper, not MySQL's natural one."""

    class Parser(MySQL.Parser):  # type: ignore[valid-type,misc]  # sqlglot types Parser as a variable
        LOG_DEFAULTS_TO_LN = False


DIALECT: Any = _Kuiper
EVENTS_STREAM = "events"
STREAMS = frozenset({EVENTS_STREAM})
META = "\x00meta"
"""Key of a row's event document (EdgeX JSON), for `meta()`: the event's tags, a reading's metadata."""
_READING_VALUES = frozenset({"value", "binaryValue", "objectValue"})
EVENT_FIELDS = frozenset({"deviceName", "profileName", "sourceName", "origin", "id"})
_WINDOWS = {k.value.lower(): k for k in WindowKind}
_UNSUPPORTED_WINDOWS = {"sessionwindow", "statewindow"}
_TYPED_NAMES = {
    "starts_with": "startswith",
    "ends_with": "endswith",
    "variance_pop": "var",
    "variance": "vars",
    "stddev_samp": "stddevs",
    "stddev_pop": "stddev",
    "pow": "power",
}


class RuleSqlError(ContractInvalid):
    """A rule's SQL that cannot be run; `line`/`column` (1-based) point at the problem when known."""

    def __init__(self, reason: str, line: int | None = None, column: int | None = None) -> None:
        self.reason = reason
        self.line = line
        self.column = column
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__(f"invalid rule SQL at {where}{reason}" if where else f"invalid rule SQL: {reason}")


def _position(node: Any) -> tuple[int | None, int | None]:
    """The first source position sqlglot recorded in `node` or below it (not every node carries one)."""
    if not isinstance(node, exp.Expression):
        return None, None
    for sub in node.walk(bfs=False):
        meta = sub.meta if isinstance(sub, exp.Expression) else None
        if meta and "line" in meta:
            # sqlglot's col is the token's last character; point at its first.
            start, end = meta.get("start"), meta.get("end")
            width = end - start if isinstance(start, int) and isinstance(end, int) else 0
            return int(meta["line"]), max(int(meta["col"]) - width, 1)
        if isinstance(sub, exp.Identifier) and sub.meta.get("line"):
            return int(sub.meta["line"]), int(sub.meta["col"])
    return None, None


def _error(node: Any, reason: str) -> RuleSqlError:
    line, col = _position(node)
    return RuleSqlError(reason, line, col)


# -- operators on values (NULL in, NULL out; a type mismatch is NULL) ----------------------------------


def _binary(op: Callable[[Any, Any], Any], a: Eval, b: Eval) -> Eval:
    def f(x: Any) -> Any:
        left = a(x)
        if left is None:
            return None
        right = b(x)
        if right is None:
            return None
        try:
            return op(left, right)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            return None

    return f


def _binary_const(op: Callable[[Any, Any], Any], a: Eval, const: Any) -> Eval:
    if const is None:
        return lambda _x: None

    def f(x: Any) -> Any:
        left = a(x)
        if left is None:
            return None
        try:
            return op(left, const)
        except (TypeError, ValueError, ZeroDivisionError, OverflowError):
            return None

    return f


def _cmp(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], Any]:
    """A comparison; values of different kinds (a number and a string) compare to NULL, not False."""

    def f(a: Any, b: Any) -> Any:
        if (type(a) is str) is not (type(b) is str):
            return None
        return op(a, b)

    return f


def _div(a: Any, b: Any) -> Any:
    if isinstance(a, bool) or isinstance(b, bool):
        raise TypeError
    return a / b


def _intdiv(a: Any, b: Any) -> Any:
    if not isinstance(a, int) or not isinstance(b, int) or isinstance(a, bool) or isinstance(b, bool):
        raise TypeError
    return int(a / b)


def _mod(a: Any, b: Any) -> Any:
    if isinstance(a, bool) or isinstance(b, bool):
        raise TypeError
    return math.fmod(a, b) if isinstance(a, float) or isinstance(b, float) else int(math.fmod(a, b))


def _arith(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def f(a: Any, b: Any) -> Any:
        if type(a) is bool or type(b) is bool or type(a) is str or type(b) is str:
            raise TypeError
        return op(a, b)

    return f


def _bits(op: Callable[[int, int], int]) -> Callable[[Any, Any], Any]:
    def f(a: Any, b: Any) -> Any:
        if type(a) is not int or type(b) is not int:
            raise TypeError
        return op(a, b)

    return f


_BINARY: dict[type[exp.Expression], Callable[[Any, Any], Any]] = {
    exp.Add: _arith(operator.add),
    exp.Sub: _arith(operator.sub),
    exp.Mul: _arith(operator.mul),
    exp.Div: _div,
    exp.IntDiv: _intdiv,
    exp.Mod: _mod,
    exp.EQ: _cmp(operator.eq),
    exp.NEQ: _cmp(operator.ne),
    exp.GT: _cmp(operator.gt),
    exp.GTE: _cmp(operator.ge),
    exp.LT: _cmp(operator.lt),
    exp.LTE: _cmp(operator.le),
    exp.BitwiseAnd: _bits(operator.and_),
    exp.BitwiseOr: _bits(operator.or_),
    exp.BitwiseXor: _bits(operator.xor),
    exp.BitwiseLeftShift: _bits(operator.lshift),
    exp.BitwiseRightShift: _bits(operator.rshift),
}
_NULL_REJECTING = (*_BINARY, exp.Between, exp.In, exp.Like, exp.ILike, exp.Not, exp.Neg, exp.Paren)
"""Nodes that are NULL when an operand is: a WHERE needs every column such a node reads."""


def _and(a: Eval, b: Eval) -> Eval:
    def f(x: Any) -> Any:
        left = a(x)
        if left is False:
            return False
        right = b(x)
        if right is False:
            return False
        if left is None or right is None:
            return None
        return bool(left) and bool(right)

    return f


def _or(a: Eval, b: Eval) -> Eval:
    def f(x: Any) -> Any:
        left = a(x)
        if left is True:
            return True
        right = b(x)
        if right is True:
            return True
        if left is None or right is None:
            return None
        return bool(left) or bool(right)

    return f


def _like_regex(pattern: str, *, case: bool) -> re.Pattern[str]:
    out = []
    escape = False
    for ch in pattern:
        if escape:
            out.append(re.escape(ch))
            escape = False
        elif ch == "\\":
            escape = True
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.DOTALL | (0 if case else re.IGNORECASE))


# -- the compiler --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OutputColumn:
    name: str
    eval: Eval


@dataclass(frozen=True)
class Query:
    """One compiled rule query. `where` takes a row; `columns`, `having` and `rearm` take a row, or a
    `Group` when the query aggregates over a window (`window` is not None)."""

    sql: str
    stream: str
    columns: tuple[OutputColumn, ...]
    star: bool
    where: Eval | None
    window: WindowSpec | None
    group_by: tuple[Eval, ...]
    having: Eval | None
    aggregates: bool
    """SELECT or HAVING aggregates: a windowed query outputs one row per group (else every row)."""
    referenced: frozenset[str]
    """Columns the query reads (readings and event fields)."""
    required: frozenset[str]
    """Readings the WHERE cannot hold without (absent: the rule can skip the event)."""
    device: str | None
    """The device a top-level `deviceName = '...'` in WHERE selects, if any."""
    slots: tuple[Slot, ...] = ()
    """The distinct aggregate calls of SELECT, HAVING and `rearm`."""
    group_key: Callable[[Row], Any] = lambda _row: ()
    rearm: Eval | None = None
    """The rule's re-arm condition (options.rearm), compiled with the query so that it shares its slots."""

    def group(self, rows: list[Row]) -> Group:
        """A group of these rows, in window order, with every aggregate computed from them."""
        return Group.of(rows, self.slots)

    def new_content(self, fifo: bool) -> Groups:
        """An empty window content: running aggregates per group (FIFO for a sliding window)."""
        return Groups(self.group_key, self.slots, fifo)

    @property
    def output_names(self) -> frozenset[str] | None:
        """The columns a row of this query's output has; None when any (SELECT *)."""
        return None if self.star else frozenset(c.name for c in self.columns)

    def project(self, x: Any) -> Row:
        """An output row: `x` is a row, a `Group`, or a group's rows (in window order)."""
        if isinstance(x, list):
            x = self.group(x)
        out: Row = {}
        if self.star:
            row = x if isinstance(x, dict) else x.last
            out.update((k, v) for k, v in row.items() if k != META)
        for col in self.columns:
            out[col.name] = col.eval(x)
        return out


@dataclass
class _Compiler:
    windowed: bool
    referenced: set[str] = field(default_factory=set)
    in_aggregate: bool = False
    clause: str = "SELECT"
    aggregates_seen: bool = False
    slots: list[Slot] = field(default_factory=list)
    _slot_index: dict[tuple[Any, ...], int] = field(default_factory=dict)

    def slot(self, name: str, key: str, arg: Callable[[Row], Any], extra: tuple[Any, ...]) -> int:
        """The index of the slot of this aggregate call (`key` its argument's SQL), shared with the same call
        elsewhere in the query."""
        ident = (name, key, extra)
        index = self._slot_index.get(ident)
        if index is None:
            index = self._slot_index[ident] = len(self.slots)
            self.slots.append(Slot(name, arg, extra))
        return index

    # mode: "row" compiles for a Row, "group" for a list of rows (windowed SELECT/HAVING outside aggregates)
    def compile(self, node: exp.Expression, group: bool) -> Eval:
        fn = self._compile(node, group)
        return fn

    def constant(self, node: exp.Expression) -> tuple[bool, Any]:
        if isinstance(node, exp.Paren):
            return self.constant(node.this)
        if isinstance(node, exp.Literal):
            return True, _literal(node)
        if isinstance(node, exp.Boolean):
            return True, bool(node.this)
        if isinstance(node, exp.Null):
            return True, None
        if isinstance(node, exp.Neg):
            ok, value = self.constant(node.this)
            if ok and isinstance(value, int | float) and not isinstance(value, bool):
                return True, -value
        return False, None

    def _compile(self, node: exp.Expression, group: bool) -> Eval:
        ok, const = self.constant(node)
        if ok:
            return _const(const)
        if isinstance(node, exp.Paren):
            return self._compile(node.this, group)
        if isinstance(node, exp.Column):
            return self._column(node, group)
        if isinstance(node, exp.Star):
            raise _error(node, "* is only allowed alone in SELECT or in count(*)")
        binary = _BINARY.get(type(node))
        if binary is not None:
            a = self._compile(node.this, group)
            ok, const = self.constant(node.expression)
            if ok:
                return _binary_const(binary, a, const)
            return _binary(binary, a, self._compile(node.expression, group))
        if isinstance(node, exp.NullSafeEQ):
            a, b = self._compile(node.this, group), self._compile(node.expression, group)
            return lambda x: a(x) == b(x)
        if isinstance(node, exp.And):
            return _and(self._compile(node.this, group), self._compile(node.expression, group))
        if isinstance(node, exp.Or):
            return _or(self._compile(node.this, group), self._compile(node.expression, group))
        if isinstance(node, exp.Not):
            inner = self._compile(node.this, group)

            def not_(x: Any) -> Any:
                v = inner(x)
                return None if v is None else not v

            return not_
        if isinstance(node, exp.Neg):
            inner = self._compile(node.this, group)
            return _neg(inner)
        if isinstance(node, exp.BitwiseNot):
            inner = self._compile(node.this, group)
            return lambda x: ~v if type(v := inner(x)) is int else None
        if isinstance(node, exp.Is):
            inner = self._compile(node.this, group)
            if not isinstance(node.expression, exp.Null):
                raise _error(node, "IS takes NULL or NOT NULL only")
            return lambda x: inner(x) is None
        if isinstance(node, exp.Between | exp.In | exp.Like | exp.ILike) and node.args.get("negate"):
            positive = node.copy()
            positive.set("negate", None)
            inner = self._compile(positive, group)
            return lambda x: None if (v := inner(x)) is None else not v
        if isinstance(node, exp.Between):
            return self._between(node, group)
        if isinstance(node, exp.In):
            return self._in(node, group)
        if isinstance(node, exp.Like | exp.ILike):
            return self._like(node, group)
        if isinstance(node, exp.Case):
            return self._case(node, group)
        if isinstance(node, exp.Cast):
            inner = self._compile(node.this, group)
            to = node.to.this.value.lower() if isinstance(node.to, exp.DataType) else str(node.to).lower()
            return lambda x: None if (v := inner(x)) is None else cast_value(v, to)
        if isinstance(node, exp.Func):
            return self._function(node, group)
        if isinstance(node, exp.Subquery | exp.Select):
            raise _error(node, "subqueries are not supported")
        raise _error(node, f"{node.key.upper()} expressions are not supported ({node.sql(dialect=DIALECT)})")

    def _column(self, node: exp.Column, group: bool) -> Eval:
        if node.table and node.table != EVENTS_STREAM:
            raise _error(node, f"unknown stream {node.table!r} in column {node.sql(dialect=DIALECT)}")
        name = node.name
        self.referenced.add(name)
        if group and not self.in_aggregate:
            return lambda g: g.last.get(name)
        return lambda row: row.get(name)

    def _between(self, node: exp.Between, group: bool) -> Eval:
        v = self._compile(node.this, group)
        lo = self._compile(node.args["low"], group)
        hi = self._compile(node.args["high"], group)
        ge, le = _cmp(operator.ge), _cmp(operator.le)

        def between(x: Any) -> Any:
            value, low, high = v(x), lo(x), hi(x)
            if value is None or low is None or high is None:
                return None
            try:
                a, b = ge(value, low), le(value, high)
            except TypeError:
                return None
            return None if a is None or b is None else a and b

        return between

    def _in(self, node: exp.In, group: bool) -> Eval:
        if node.args.get("query") is not None:
            raise _error(node, "IN (SELECT ...) is not supported")
        v = self._compile(node.this, group)
        items = node.expressions
        consts = [self.constant(i) for i in items]
        if all(ok for ok, _ in consts):
            values = [c for _, c in consts if c is not None]
            try:
                members: frozenset[Any] | None = frozenset(values)
            except TypeError:
                members = None
            if members is not None:
                return lambda x: None if (value := v(x)) is None else (value in members)
        evals = [self._compile(i, group) for i in items]

        def in_(x: Any) -> Any:
            value = v(x)
            if value is None:
                return None
            return any(value == e(x) for e in evals)

        return in_

    def _like(self, node: exp.Like | exp.ILike, group: bool) -> Eval:
        v = self._compile(node.this, group)
        case = isinstance(node, exp.Like)
        ok, pattern = self.constant(node.expression)
        if ok:
            if not isinstance(pattern, str):
                raise _error(node.expression, "LIKE needs a string pattern")
            rx = _like_regex(pattern, case=case)
            return lambda x: (rx.match(s) is not None) if isinstance(s := v(x), str) else None
        p = self._compile(node.expression, group)

        def like(x: Any) -> Any:
            s, pat = v(x), p(x)
            if not isinstance(s, str) or not isinstance(pat, str):
                return None
            return _like_regex(pat, case=case).match(s) is not None

        return like

    def _case(self, node: exp.Case, group: bool) -> Eval:
        subject = self._compile(node.this, group) if node.this is not None else None
        branches = [(self._compile(i.this, group), self._compile(i.args["true"], group)) for i in node.args["ifs"]]
        default = self._compile(node.args["default"], group) if node.args.get("default") is not None else None

        def case(x: Any) -> Any:
            if subject is not None:
                s = subject(x)
                for cond, then in branches:
                    if s is not None and s == cond(x):
                        return then(x)
            else:
                for cond, then in branches:
                    if cond(x) is True:
                        return then(x)
            return default(x) if default is not None else None

        return case

    # -- functions -------------------------------------------------------------------------------------
    def _function(self, node: exp.Func, group: bool) -> Eval:
        name, args = _function_parts(node)
        if name in _WINDOWS or name in _UNSUPPORTED_WINDOWS:
            raise _error(node, f"{_window_name(name)} is only allowed in GROUP BY")
        if name == "meta":
            return self._meta(node, args, group)
        agg_name = AGGREGATE_ALIASES.get(name, name)
        agg = AGGREGATES.get(agg_name)
        if agg is not None:
            return self._aggregate(node, agg_name, agg, args)
        scalar_name = SCALAR_ALIASES.get(name, name)
        scalar = SCALARS.get(scalar_name)
        if scalar is None:
            raise _error(node, f"unknown function {name}()")
        if not scalar.min_args <= len(args) <= scalar.max_args:
            want = (
                str(scalar.min_args)
                if scalar.min_args == scalar.max_args
                else f"{scalar.min_args} to {scalar.max_args}"
            )
            raise _error(node, f"{scalar_name}() takes {want} argument(s), got {len(args)}")
        evals = [self._compile(a, group) for a in args]
        fn = scalar.fn
        if len(evals) == 1:
            (only,) = evals
            if scalar_name in ("coalesce", "isnull"):
                return lambda x: fn(only(x))
            return lambda x: None if (v := only(x)) is None else fn(v)
        return lambda x: fn(*[e(x) for e in evals])

    def _meta(self, node: exp.Func, args: Sequence[exp.Expression], group: bool) -> Eval:
        if len(args) != 1 or not isinstance(args[0], exp.Column):
            raise _error(node, "meta() takes one name: meta(deviceName), meta(id), meta(temperature)")
        key = args[0].name

        def meta(row: Row) -> Any:
            if key in EVENT_FIELDS:
                return row.get(key)
            doc = row.get(META) or {}
            if key != "readings" and key in doc:
                return doc[key]
            for reading in doc.get("readings", ()):
                if reading.get("resourceName") == key:
                    return {k: v for k, v in reading.items() if k not in _READING_VALUES}
            return None

        if group and not self.in_aggregate:
            return lambda g: meta(g.last) if g.n else None
        return meta

    def _aggregate(self, node: exp.Func, name: str, agg: Aggregate, args: Sequence[exp.Expression]) -> Eval:
        if self.clause == "WHERE":
            raise _error(node, f"aggregate function {name}() is not allowed in WHERE; use HAVING")
        if not self.windowed:
            raise _error(node, f"aggregate function {name}() needs a window, e.g. GROUP BY TumblingWindow(ss, 10)")
        if self.in_aggregate:
            raise _error(node, f"aggregate function {name}() cannot be nested in another aggregate")
        self.aggregates_seen = True
        if len(args) != 1 + agg.extra_args:
            raise _error(node, f"{name}() takes {1 + agg.extra_args} argument(s), got {len(args)}")
        extra = []
        for a in args[1:]:
            ok, value = self.constant(a)
            if not ok:
                raise _error(a, f"the second argument of {name}() must be a constant")
            extra.append(value)
        if isinstance(args[0], exp.Star):
            if name != "count":
                raise _error(node, f"{name}(*) is not allowed; only count(*)")
            return lambda g: g.n
        arg: Callable[[Row], Any]
        if isinstance(args[0], exp.Column) and not args[0].table:
            # The common case, without a call per node: the value of one column.
            column = args[0].name
            self.referenced.add(column)
            arg = lambda row: row.get(column)  # noqa: E731
        else:
            self.in_aggregate = True
            try:
                arg = self._compile(args[0], False)
            finally:
                self.in_aggregate = False
        index = self.slot(name, args[0].sql(dialect=DIALECT), arg, tuple(extra))
        return lambda g: g.accs[index].result()


def _const(value: Any) -> Eval:
    return lambda _x: value


def _neg(inner: Eval) -> Eval:
    def neg(x: Any) -> Any:
        v = inner(x)
        return -v if isinstance(v, int | float) and not isinstance(v, bool) else None

    return neg


def _literal(node: exp.Literal) -> Any:
    if node.is_string:
        return node.this
    text = node.this
    try:
        return int(text)
    except ValueError:
        return float(text)


def _function_parts(node: exp.Func) -> tuple[str, list[exp.Expression]]:
    """(eKuiper name, arguments) of a call, whether sqlglot kept it anonymous or gave it a class."""
    if isinstance(node, exp.Anonymous):
        return node.name.lower(), list(node.expressions)
    if isinstance(node, exp.Log):
        # sqlglot: LOG(base, x) -> Log(this=base, expression=x); ours: log(x[, base]).
        if node.expression is not None:
            return "log", [node.expression, node.this]
        return "log", [node.this]
    if isinstance(node, exp.Pad):
        return ("lpad" if node.args.get("is_left") else "rpad"), [node.this, node.expression]
    if isinstance(node, exp.Trim):
        position = str(node.args.get("position") or "").upper()
        if node.expression is not None:
            raise _error(node, "trim() takes one argument")
        return {"LEADING": "ltrim", "TRAILING": "rtrim"}.get(position, "trim"), [node.this]
    if isinstance(node, exp.Floor | exp.Ceil):
        return type(node).sql_name().lower(), [node.this]
    if isinstance(node, exp.Count) and isinstance(node.this, exp.Star):
        return "count", [node.this]
    name = type(node).sql_name().lower()
    name = _TYPED_NAMES.get(name, name)
    args: list[exp.Expression] = []
    for key in type(node).arg_types:
        value = node.args.get(key)
        if isinstance(value, exp.Expression):
            args.append(value)
        elif isinstance(value, list):
            args.extend(v for v in value if isinstance(v, exp.Expression))
    return name, args


def _window_name(name: str) -> str:
    kind = _WINDOWS.get(name)
    return kind.value if kind else {"sessionwindow": "SessionWindow", "statewindow": "StateWindow"}[name]


def _window(node: exp.Expression, compiler: _Compiler) -> WindowSpec:
    assert isinstance(node, exp.Anonymous)
    name = node.name.lower()
    if name in _UNSUPPORTED_WINDOWS:
        raise _error(
            node,
            f"{_window_name(name)} is not supported; use Tumbling-, Hopping-, Sliding- or CountWindow",
        )
    kind = _WINDOWS[name]
    args = list(node.expressions)

    def integer(arg: exp.Expression, what: str) -> int:
        ok, value = compiler.constant(arg)
        if not ok or not isinstance(value, int) or isinstance(value, bool) or value <= 0:
            raise _error(arg, f"{kind.value}: {what} must be a positive integer, got {arg.sql(dialect=DIALECT)}")
        return value

    if kind is WindowKind.COUNT:
        if not 1 <= len(args) <= 2:
            raise _error(node, "CountWindow takes (count[, interval])")
        size = integer(args[0], "the count")
        hop = integer(args[1], "the interval") if len(args) == 2 else size
        if hop > size:
            raise _error(args[1], "CountWindow: the interval must not exceed the count")
        return WindowSpec(kind, size, hop)
    unit_node = args[0] if args else None
    units = ", ".join(UNITS_MS)
    if not isinstance(unit_node, exp.Column) or unit_node.name.lower() not in UNITS_MS:
        raise _error(unit_node or node, f"{kind.value} needs a time unit ({units}) as its first argument")
    unit = UNITS_MS[unit_node.name.lower()]
    rest = args[1:]
    if kind is WindowKind.TUMBLING:
        if len(rest) != 1:
            raise _error(node, "TumblingWindow takes (unit, size)")
        size = integer(rest[0], "the size") * unit
        return WindowSpec(kind, size, size)
    if kind is WindowKind.HOPPING:
        if len(rest) != 2:
            raise _error(node, "HoppingWindow takes (unit, size, hop)")
        return WindowSpec(kind, integer(rest[0], "the size") * unit, integer(rest[1], "the hop") * unit)
    if not 1 <= len(rest) <= 2:
        raise _error(node, "SlidingWindow takes (unit, size[, delay])")
    delay = integer(rest[1], "the delay") * unit if len(rest) == 2 else 0
    return WindowSpec(kind, integer(rest[0], "the size") * unit, delay)


def _required(node: exp.Expression | None) -> set[str]:
    """Columns without which `node` cannot be TRUE (it is NULL when one of them is missing)."""
    if node is None:
        return set()
    if isinstance(node, exp.Column):
        return {node.name}
    if isinstance(node, exp.And):
        return _required(node.this) | _required(node.expression)
    if isinstance(node, exp.Or):
        return _required(node.this) & _required(node.expression)
    if isinstance(node, exp.Not) and isinstance(node.this, exp.Is):
        return _required(node.this.this)  # x IS NOT NULL
    if isinstance(node, exp.Is):
        return set()
    if isinstance(node, _NULL_REJECTING):
        out: set[str] = set()
        for child in node.iter_expressions():
            if isinstance(child, exp.Expression):
                out |= _required(child)
        return out
    return set()


def _device_filter(node: exp.Expression | None) -> str | None:
    """'x' when WHERE is `deviceName = 'x'`, alone or ANDed with other conditions."""
    if node is None:
        return None
    if isinstance(node, exp.Paren):
        return _device_filter(node.this)
    if isinstance(node, exp.And):
        return _device_filter(node.this) or _device_filter(node.expression)
    if isinstance(node, exp.EQ):
        for col, lit in ((node.this, node.expression), (node.expression, node.this)):
            if (
                isinstance(col, exp.Column)
                and col.name == "deviceName"
                and isinstance(lit, exp.Literal)
                and lit.is_string
            ):
                return str(lit.this)
    return None


def _output_name(node: exp.Expression, index: int) -> str:
    if isinstance(node, exp.Alias):
        return node.alias
    if isinstance(node, exp.Column):
        return node.name
    if isinstance(node, exp.Func):
        name, args = _function_parts(node)
        if name == "meta" and args and isinstance(args[0], exp.Column):
            return args[0].name
        return name
    return f"kuiper_field_{index}"


def parse(sql: str) -> exp.Select:
    """The sqlglot tree of one SELECT; RuleSqlError with the position on a syntax error."""
    if not isinstance(sql, str) or not sql.strip():
        raise RuleSqlError("the rule has no SQL")
    try:
        statements = sqlglot.parse(sql, read=DIALECT)
    except ParseError as err:
        first = err.errors[0] if err.errors else {}
        reason = str(first.get("description") or err).split("\n")[0]
        highlight = first.get("highlight")
        if highlight:
            reason = f"{reason} (near {highlight!r})"
        line, col = first.get("line"), first.get("col")
        if isinstance(col, int) and isinstance(highlight, str) and highlight:
            col = max(col - len(highlight) + 1, 1)
        raise RuleSqlError(reason, line, col) from None
    except TokenError as err:
        raise RuleSqlError(str(err).split("\n")[0]) from None
    found = [s for s in statements if s is not None]
    if len(found) != 1:
        raise RuleSqlError(f"a rule has exactly one SELECT statement, got {len(found)}")
    tree = found[0]
    if not isinstance(tree, exp.Select):
        raise _error(tree, f"a rule is a SELECT statement, not {type(tree).__name__.upper()}")
    return tree


def compile_query(sql: str, *, streams: frozenset[str] = STREAMS, rearm: str | None = None) -> Query:
    """Parse and compile one rule's SQL (see the module docstring), and its re-arm condition if any;
    RuleSqlError names what and where (in the condition's own text for `rearm`)."""
    tree = parse(sql)
    for clause in ("joins", "order", "limit", "offset", "distinct", "with", "qualify", "windows"):
        value = tree.args.get(clause)
        if value:
            node = value[0] if isinstance(value, list) else value
            raise _error(
                node if isinstance(node, exp.Expression) else tree, f"{clause.upper()} is not supported in a rule"
            )
    source = tree.args.get("from_") or tree.args.get("from")
    if source is None:
        raise RuleSqlError(f"the rule has no FROM; the stream of all events is {EVENTS_STREAM!r}")
    table = source.this
    if not isinstance(table, exp.Table) or not table.name:
        raise _error(table, "FROM takes a stream name")
    if table.name not in streams:
        known = ", ".join(sorted(streams))
        raise _error(table, f"unknown stream {table.name!r}; known streams: {known}")

    # GROUP BY: at most one window, and further grouping expressions.
    window: WindowSpec | None = None
    group_nodes: list[exp.Expression] = []
    group = tree.args.get("group")
    probe = _Compiler(windowed=False)
    if group is not None:
        for node in group.expressions:
            if isinstance(node, exp.Anonymous) and (
                node.name.lower() in _WINDOWS or node.name.lower() in _UNSUPPORTED_WINDOWS
            ):
                if window is not None:
                    raise _error(node, "only one window per rule")
                window = _window(node, probe)
            else:
                group_nodes.append(node)
        if window is None:
            raise _error(group, "GROUP BY needs a window: TumblingWindow, HoppingWindow, SlidingWindow or CountWindow")
    windowed = window is not None
    compiler = _Compiler(windowed=windowed)

    where_node = tree.args.get("where")
    where = None
    if where_node is not None:
        compiler.clause = "WHERE"
        where = compiler.compile(where_node.this, False)
    compiler.clause = "GROUP BY"
    group_by = tuple(compiler.compile(n, False) for n in group_nodes)

    compiler.clause = "SELECT"
    columns: list[OutputColumn] = []
    star = False
    for index, node in enumerate(tree.expressions):
        if isinstance(node, exp.Star):
            star = True
            continue
        inner = node.this if isinstance(node, exp.Alias) else node
        columns.append(OutputColumn(_output_name(node, index), compiler.compile(inner, windowed)))
    having_node = tree.args.get("having")
    having = None
    if having_node is not None:
        if not windowed:
            raise _error(having_node, "HAVING needs a window in GROUP BY")
        compiler.clause = "HAVING"
        having = compiler.compile(having_node.this, True)
    aggregates = compiler.aggregates_seen
    if windowed and not aggregates:
        # No aggregate: each row of the window is output; re-compile the columns for a single row.
        row_compiler = _Compiler(windowed=True)
        columns = [
            OutputColumn(c.name, row_compiler.compile(n.this if isinstance(n, exp.Alias) else n, False))
            for c, n in zip(columns, [n for n in tree.expressions if not isinstance(n, exp.Star)], strict=True)
        ]

    # The re-arm condition's aggregates get slots too, but do not make a row-output query aggregate.
    rearm_eval = _condition(compiler, rearm, windowed) if rearm is not None else None
    return Query(
        sql=sql,
        stream=table.name,
        columns=tuple(columns),
        star=star,
        where=where,
        window=window,
        group_by=group_by,
        having=having,
        aggregates=aggregates,
        referenced=frozenset(compiler.referenced),
        required=frozenset(_required(where_node.this if where_node is not None else None) - EVENT_FIELDS),
        device=_device_filter(where_node.this if where_node is not None else None),
        slots=tuple(compiler.slots),
        group_key=_group_key(group_by),
        rearm=rearm_eval,
    )


def _group_key(group_by: tuple[Eval, ...]) -> Callable[[Row], Any]:
    if not group_by:
        return lambda _row: ()
    if len(group_by) == 1:
        (only,) = group_by
        return lambda row: (only(row),)
    return lambda row: tuple(g(row) for g in group_by)


def _condition(compiler: _Compiler, text: str, windowed: bool) -> Eval:
    """A boolean expression on its own, compiled by `compiler` (for a row, or a `Group` when windowed)."""
    prefix = f"SELECT 1 FROM {EVENTS_STREAM} " + ("GROUP BY CountWindow(1) HAVING " if windowed else "WHERE ")
    try:
        tree = parse(prefix + text)
        node = tree.args["having"] if windowed else tree.args["where"]
        if node is None:
            raise RuleSqlError("the condition is empty")
        clause = compiler.clause
        compiler.clause = "HAVING" if windowed else "WHERE"
        try:
            return compiler.compile(node.this, windowed)
        finally:
            compiler.clause = clause
    except RuleSqlError as err:
        # Positions in the condition's own text, not in the statement it was wrapped in.
        if err.line == 1 and err.column is not None:
            raise RuleSqlError(err.reason, 1, max(err.column - len(prefix), 1)) from None
        raise


def compile_condition(text: str, *, windowed: bool) -> Eval:
    """A boolean expression on its own (a rule's re-arm condition): for a row, or a group's rows (in window
    order) or `Group` when windowed."""
    compiler = _Compiler(windowed=windowed)
    condition = _condition(compiler, text, windowed)
    if not windowed:
        return condition
    slots = tuple(compiler.slots)
    return lambda x: condition(Group.of(x, slots) if isinstance(x, list) else x)
